"""Dead-letter replay: rebuild users from stored payloads, re-validate with today's rules, send again.

Letters are grouped per user: the newest payload gives identifiers/attributes, events of all the user's
letters are merged (the sender's ledger drops those already acknowledged). When Insider acknowledged newer
attributes for the user after the letter was written, only identifiers + events are replayed, so an old
payload never overwrites newer data. Letters still invalid stay pending.

After the send, a letter is marked replayed only when the replay run's outcome for its user says Insider
acknowledged it (sent, or unchanged: Insider holds the same) or rejected it again (a new dead letter under
the replay's run id holds the reason). A letter whose user the sender skipped (claimed by a live run,
offboarded, not reached) stays pending, and the replay's figures reconcile: selected = acknowledged +
rejected again + skipped + still invalid + superseded (nothing newer to send).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from creator_sync.pipeline.identity import to_e164
from creator_sync.pipeline.mapping import Mapping, load_mapping
from creator_sync.pipeline.send import SendReport, send_file
from creator_sync.pipeline.validate import USER_TOO_LARGE, VENDOR_REJECTED, event_reasons, identifier_reasons
from creator_sync.reasons import UNSETTLED_LOST_ANSWER
from creator_sync.store import OUTCOME_SENT, OUTCOME_UNCHANGED, DeadLetter, StateStore


@dataclass
class ReplayReport:
    selected: int = 0  # pending letters matching the reasons
    users: int = 0  # distinct users rebuilt
    still_invalid: dict[str, int] = field(default_factory=dict)  # reason -> users left pending
    superseded: int = 0  # newer attributes acknowledged since: replayed events only
    marked_replayed: int = 0
    send: SendReport = field(default_factory=SendReport)
    settled: dict[str, int] = field(default_factory=dict)  # replay outcome -> letters marked replayed
    skipped: dict[str, int] = field(default_factory=dict)  # outcome -> letters left pending (not sent)


def rebuild(payload: dict[str, Any]) -> dict[str, Any]:
    """Normalise a stored payload like the transform would (email case, phone -> E.164)."""
    user = json.loads(json.dumps(payload))  # deep copy
    ids = user.setdefault("identifiers", {})
    if isinstance(ids.get("email"), str):
        ids["email"] = ids["email"].strip().lower()
    phone = ids.get("phone_number")
    if isinstance(phone, str):
        region = (user.get("attributes") or {}).get("country")
        ids["phone_number"] = to_e164(phone, region) or phone
    return user


def problems(users: list[dict[str, Any]], m: Mapping) -> pd.Series:
    """Current validation rules for rebuilt users (same checks as the transform)."""
    index = pd.RangeIndex(len(users))
    frame = pd.DataFrame(
        {
            "uuid": pd.Series([u["identifiers"].get("uuid") for u in users], index=index, dtype=object),
            "email": pd.Series([u["identifiers"].get("email") for u in users], index=index, dtype="str"),
            "phone_number": pd.Series(
                [u["identifiers"].get("phone_number") for u in users], index=index, dtype="str"
            ),
            "other_identifier": [bool(u["identifiers"].get("custom")) for u in users],
        }
    )
    reason = identifier_reasons(frame, require_contact=m.require_contact_identifier)
    events = [(i, e) for i, u in enumerate(users) for e in u.get("events") or []]
    if events:
        owners = pd.Series([i for i, _ in events])
        params = pd.DataFrame([e.get("event_params") or {} for _, e in events])
        ev_reason = event_reasons(
            pd.Series([e.get("event_name") for _, e in events]),
            pd.Series([e.get("timestamp") for _, e in events], dtype="str"),
            params,
        )
        first = ev_reason.groupby(owners).first()
        reason = reason.fillna(first.reindex(index))
    size = pd.Series([len(json.dumps(u, separators=(",", ":")).encode()) for u in users], index=index)
    return reason.mask(reason.isna() & (size > m.max_user_bytes), USER_TOO_LARGE)


def _merge(letters: list[DeadLetter]) -> dict[str, Any]:
    newest = rebuild(letters[-1].payload)
    events = {json.dumps(e, sort_keys=True): e for dl in letters for e in dl.payload.get("events") or []}
    if events:
        newest["events"] = list(events.values())
    return newest


@dataclass
class ReplayPlan:
    """What a replay will send (users.jsonl), the letters it hands to the sender (letter id -> user key),
    the letters settled without a send (nothing newer than Insider holds) and the still-invalid ones."""

    users_path: Path
    letters: dict[str, str]
    report: ReplayReport
    settled_without_send: list[str] = field(default_factory=list)
    invalid_letters: int = 0

    @property
    def letter_ids(self) -> list[str]:
        return list(self.letters) + list(self.settled_without_send)

    def as_dict(self) -> dict[str, Any]:
        return {
            "users_path": str(self.users_path),
            "letters": dict(self.letters),
            "settled_without_send": list(self.settled_without_send),
            "invalid_letters": self.invalid_letters,
            "selected": self.report.selected,
            "users": self.report.users,
            "still_invalid": dict(self.report.still_invalid),
            "superseded": self.report.superseded,
        }


def prepare_replay(
    state: StateStore,
    out_dir: str | Path,
    *,
    reasons: list[str] | None = None,
    mapping: Mapping | None = None,
    limit: int | None = None,
) -> ReplayPlan:
    """Pick pending letters (by reason), rebuild and re-validate their users, write those to send as
    `out_dir/users.jsonl`. The letters are marked replayed only after the send (finish_replay)."""
    m = mapping or load_mapping()
    report = ReplayReport()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    users_path = out / "users.jsonl"
    letters = state.dead_letters(reasons=reasons, pending_only=True, limit=limit)
    report.selected = len(letters)
    by_user: dict[str, list[DeadLetter]] = {}
    for dl in letters:
        by_user.setdefault(dl.user_key, []).append(dl)
    report.users = len(by_user)
    ready, plan = [], ReplayPlan(users_path, {}, report)
    if by_user:
        keys = list(by_user)
        users = [_merge(by_user[k]) for k in keys]
        verdict = problems(users, m)
        report.still_invalid = dict(Counter(verdict.dropna()))
        acked = state.attribute_hashes(keys)
        for i, key in enumerate(keys):
            if pd.notna(verdict.iloc[i]):
                plan.invalid_letters += len(by_user[key])
                continue
            user = users[i]
            if key in acked and acked[key][1] > by_user[key][-1].created_at:
                report.superseded += 1
                user = {k: v for k, v in user.items() if k in ("identifiers", "events")}
                if "events" not in user:  # nothing left that is newer than what Insider has
                    plan.settled_without_send.extend(dl.id for dl in by_user[key])
                    continue
            ready.append(user)
            plan.letters.update({dl.id: key for dl in by_user[key]})
    with users_path.open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(u) + "\n" for u in ready)
    return plan


# Replay outcomes that settle a letter: Insider acknowledged the user (or holds the same), or rejected it
# again (the new dead letter carries the reason).
SETTLING = frozenset(
    {OUTCOME_SENT, OUTCOME_UNCHANGED, VENDOR_REJECTED, USER_TOO_LARGE, UNSETTLED_LOST_ANSWER}
)
NOT_REACHED = "not_reached"  # the sender stopped before the user's chunk (the task failed)


def finish_replay(state: StateStore, plan: ReplayPlan | dict, run_id: str) -> ReplayReport:
    """Mark replayed the letters whose user the replay's send settled (see SETTLING); the others stay
    pending. Returns the letter counts: ``settled`` and ``skipped`` by outcome, ``marked_replayed``."""
    if isinstance(plan, ReplayPlan):
        plan = plan.as_dict()
    letters: dict[str, str] = plan["letters"]
    outcomes = state.run_user_outcomes(run_id, set(letters.values()))
    report = ReplayReport(selected=plan.get("selected", 0))
    marked = list(plan.get("settled_without_send") or [])
    for letter, user in letters.items():
        outcome = outcomes.get(user, NOT_REACHED)
        into = report.settled if outcome in SETTLING else report.skipped
        into[outcome] = into.get(outcome, 0) + 1
        if outcome in SETTLING:
            marked.append(letter)
    state.mark_replayed(marked)
    report.marked_replayed = len(marked)
    return report


def replay_gap(plan: ReplayPlan | dict, done: ReplayReport) -> int:
    """selected - (settled + skipped + still invalid + settled without a send): 0 when the replay
    reconciles."""
    if isinstance(plan, ReplayPlan):
        plan = plan.as_dict()
    accounted = sum(done.settled.values()) + sum(done.skipped.values())
    accounted += plan.get("invalid_letters", 0) + len(plan.get("settled_without_send") or [])
    return int(plan.get("selected", 0)) - accounted


def replay_dead_letters(
    state: StateStore,
    hook: Any,
    *,
    run_id: str,
    reasons: list[str] | None = None,
    mapping: Mapping | None = None,
    limit: int | None = None,
    skip_hook: bool = True,
    error_callback_endpoint: str | None = None,
    out_dir: str | Path | None = None,
) -> ReplayReport:
    """prepare_replay -> the sender (send_file) -> finish_replay, in one call (the DAG runs the three as
    tasks, the send through InsiderUpsertOperator). `skip_hook` defaults to True: replayed data is
    historical and should not enter journeys."""
    import tempfile

    m = mapping or load_mapping()
    with tempfile.TemporaryDirectory() as tmp:
        plan = prepare_replay(state, out_dir or tmp, reasons=reasons, mapping=m, limit=limit)
        report = plan.report
        if plan.letters:
            report.send = send_file(
                plan.users_path,
                state=state,
                hook=hook,
                run_id=run_id,
                mapping=m,
                skip_hook=skip_hook,
                error_callback_endpoint=error_callback_endpoint,
                # a letter whose user a live run holds stays pending for a later replay
                wait_for_claims=False,
            )
            done = finish_replay(state, plan, run_id)
            report.marked_replayed, report.settled, report.skipped = (
                done.marked_replayed,
                done.settled,
                done.skipped,
            )
        elif plan.settled_without_send:
            report.marked_replayed = finish_replay(state, plan, run_id).marked_replayed
    return report
