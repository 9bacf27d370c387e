"""Send Insider users exactly once: ledger filter -> hook batches -> one state transaction per 200 response.

Before planning, per user: events already acknowledged are dropped (event ledger); a user whose
identifiers+attributes hash equals the last acknowledged one and who has no new events is skipped
(`unchanged`); one whose attributes are unchanged but who has new events is sent with identifiers+events
only. After each 200 response, one transaction records the accepted users' events and attribute hashes and
dead-letters the failed users with Insider's messages. A retried task or a re-run of the same interval
therefore resumes from the ledger. The one window left is a crash after Insider answered and before the
commit: that batch is sent again (Insider has no idempotency key to prevent it).

The hook is creator_sync.hooks.insider.InsiderHook (or a fake with the same two methods):
`plan_batches(users, skip_hook=, error_callback_endpoint=)` yields batches with `.users`, `.indices`
(positions in the input stream), `.rejected`, `.reason`; `upsert_batch(batch, skip_hook=,
error_callback_endpoint=)` returns a result with `.failed` (batch-local index -> messages).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creator_sync.files import exists, open_input
from creator_sync.pipeline.keys import attribute_hash, event_key, user_key
from creator_sync.pipeline.mapping import Mapping, load_mapping
from creator_sync.pipeline.state import StateStore
from creator_sync.pipeline.validate import USER_TOO_LARGE, VENDOR_REJECTED
from creator_sync.progress import track

if TYPE_CHECKING:  # type hints only: no Airflow import at runtime
    from creator_sync.hooks.insider import InsiderHook


@dataclass
class SendReport:
    users_sent: int = 0  # accepted by Insider (200 and not listed under fail)
    events_sent: int = 0  # events of accepted users, now in the ledger
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> users (validation, local, vendor)
    unchanged: int = 0  # same attributes as last acknowledged and no new events
    requests: int = 0  # Upsert requests that got a 200
    events_already_acknowledged: int = 0  # dropped before sending (ledger)
    unattributed_errors: int = 0  # error keys in a 200 body that name no user
    in_flight_confirmed: int = 0  # unanswered batches of an earlier attempt that Insider had stored
    in_flight_resent: int = 0  # unanswered batches that had not arrived: planned again

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "users_sent": self.users_sent,
            "events_sent": self.events_sent,
            "rejected": dict(self.rejected),
            "unchanged": self.unchanged,
            "requests": self.requests,
            "events_already_acknowledged": self.events_already_acknowledged,
            "unattributed_errors": self.unattributed_errors,
            "in_flight_confirmed": self.in_flight_confirmed,
            "in_flight_resent": self.in_flight_resent,
        }


@dataclass
class _Pending:
    user_key: str
    attr_hash: str
    event_keys: list[str]


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    with open_input(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def record_rejections(
    rejected_path: str | Path, *, state: StateStore, run_id: str, chunk: int = 1000
) -> Counter:
    """Dead-letter the transform's rejected users (idempotent); returns users per reason."""
    counts: Counter = Counter()
    rows = iter_jsonl(rejected_path)
    while part := list(islice(rows, chunk)):
        state.add_dead_letters(run_id, part)
        counts.update(r["reason"] for r in part)
    return counts


class _Planner:
    """Turns the users stream into what is left to send, remembering per stream index what to record."""

    def __init__(self, state: StateStore, mapping: Mapping, report: SendReport, chunk: int):
        self.state, self.mapping, self.report, self.chunk = state, mapping, report, chunk
        self.pending: dict[int, _Pending] = {}
        self.index = 0

    def _keys(self, uuid: str, user: dict) -> list[str]:
        return [
            event_key(uuid, e, self.mapping.key_params(e.get("event_name"))) for e in user.get("events") or []
        ]

    def __call__(self, users: Iterable[dict]) -> Iterator[dict]:
        users = iter(users)
        while part := list(islice(users, self.chunk)):
            prepared = [(user_key(u), u) for u in part]
            prepared = [(k, u, attribute_hash(u), self._keys(k, u)) for k, u in prepared]
            acked = self.state.acknowledged(key for *_, keys in prepared for key in keys)
            known = self.state.attribute_hashes(k for k, *_ in prepared)
            for uuid, user, attr_hash, keys in prepared:
                new_events, new_keys = [], []
                for ev, key in zip(user.get("events") or [], keys, strict=True):
                    if key in acked or key in new_keys:
                        self.report.events_already_acknowledged += 1
                    else:
                        new_events.append(ev)
                        new_keys.append(key)
                same = uuid in known and known[uuid][0] == attr_hash
                if same and not new_events:
                    self.report.unchanged += 1
                    continue
                out = (
                    {"identifiers": user["identifiers"]}
                    if same
                    else {k: v for k, v in user.items() if k != "events"}
                )
                if new_events:
                    out["events"] = new_events
                self.pending[self.index] = _Pending(uuid, attr_hash, new_keys)
                self.index += 1
                yield out


def _batch_key(run_id: str, pending: list[_Pending]) -> str:
    digest = hashlib.sha256("\n".join(p.user_key for p in pending).encode()).hexdigest()[:16]
    return f"{run_id}:{digest}"


PROBES_PER_BATCH = 3  # Profile API lookups when resolving one unanswered batch (rare: a crash mid-request)


def _probe_events(pending: list[_Pending], users: list[dict]) -> list[dict]:
    """The first event of up to PROBES_PER_BATCH users of the batch (identifiers + name + time each): Insider
    may reject single users of a request that arrived, so one probe alone could miss a stored batch."""
    probes = []
    for p, user in zip(pending, users, strict=True):
        for ev in (user.get("events") or [])[:1]:
            probes.append(
                {
                    "user_key": p.user_key,
                    "identifiers": user["identifiers"],
                    "event_name": ev["event_name"],
                    "timestamp": ev["timestamp"],
                }
            )
        if len(probes) == PROBES_PER_BATCH:
            break
    return probes


def _event_landed(hook: InsiderHook, probe: dict) -> bool:
    moment = epoch_seconds(probe["timestamp"])
    wanted = {"event_name": probe["event_name"], "params": ["timestamp"]}
    events = {"start_date": moment - 1, "end_date": moment + 1, "wanted": [wanted]}
    result = hook.get_profile(identifiers=probe["identifiers"], attributes=None, events=events)
    return result.found and bool(result.events.get(probe["event_name"]))


def resolve_in_flight(state: StateStore, hook: InsiderHook, report: SendReport) -> None:
    """Batches sent by an earlier attempt without a recorded answer: ask Insider (Profile API, one lookup per
    probe user) whether the batch arrived. Insider stores a request's valid users together, so any probe
    found means it arrived: its events and hashes are acknowledged, except those of probe users Insider does
    not hold (it rejected them; they are planned again and their rejection reaches the dead letters). No
    probe found: the batch is forgotten and its events stay unacknowledged, the planner sends them again."""
    for batch_key, run_id, record in state.in_flight():
        probes = record.get("probes") or [record["probe"]]  # "probe": records of earlier versions
        missing = {p.get("user_key") for p in probes if not _event_landed(hook, p)}
        if len(missing) < len(probes):
            events = [tuple(e) for e in record["events"] if e[1] not in missing]
            hashes = [tuple(h) for h in record["hashes"] if h[0] not in missing]
            state.record_batch(run_id=run_id, batch_key=batch_key, events=events, hashes=hashes, failures=[])
            report.in_flight_confirmed += 1
        else:
            state.forget_in_flight(batch_key)
            report.in_flight_resent += 1


def epoch_seconds(value: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def send_users(
    users: Iterable[dict],
    *,
    state: StateStore,
    hook: InsiderHook,
    run_id: str,
    mapping: Mapping | None = None,
    skip_hook: bool = False,
    error_callback_endpoint: str | None = None,
    read_chunk: int = 1000,
    report: SendReport | None = None,
    max_users: int | None = None,
) -> SendReport:
    """Send validated users (dicts = users[] elements) exactly once; see the module docstring.

    `max_users` lowers the users per request below Insider's 1,000 (smaller batches = less to re-send
    when a request fails); None keeps the hook's documented maximum."""
    report = report or SendReport()
    resolve_in_flight(state, hook, report)
    planner = _Planner(state, mapping or load_mapping(), report, read_chunk)
    kwargs = {"skip_hook": skip_hook, "error_callback_endpoint": error_callback_endpoint}
    sizing = {"max_users": max_users} if max_users else {}
    for batch in track(
        hook.plan_batches(planner(users), **kwargs, **sizing),
        "upsert",
        unit="batches",
        gauges=lambda: {
            "users": report.users_sent,
            "events": report.events_sent,
            "requests": report.requests,
        },
    ):
        pending = [planner.pending.pop(i) for i in batch.indices]
        if batch.rejected:
            failures = [
                {"user_key": p.user_key, "reason": USER_TOO_LARGE, "detail": batch.reason or "", "payload": u}
                for p, u in zip(pending, batch.users, strict=True)
            ]
            state.add_dead_letters(run_id, failures)
            report.reject(USER_TOO_LARGE, len(failures))
            continue
        batch_key = _batch_key(run_id, pending)
        probes = _probe_events(pending, batch.users)
        if probes:  # events append at Insider: an unanswered request must be checked, not resent
            record = {
                "events": [(key, p.user_key) for p in pending for key in p.event_keys],
                "hashes": [(p.user_key, p.attr_hash) for p in pending],
                "probes": probes,
            }
            state.mark_in_flight(run_id, batch_key, record)
        result = hook.upsert_batch(batch, **kwargs)
        report.requests += 1
        failed = result.failed or {}
        report.unattributed_errors += len(getattr(result, "unattributed_errors", None) or {})
        accepted = [p for i, p in enumerate(pending) if i not in failed]
        failures = [
            {
                "user_key": pending[i].user_key,
                "reason": VENDOR_REJECTED,
                "detail": "; ".join(messages),
                "payload": batch.users[i],
            }
            for i, messages in sorted(failed.items())
        ]
        state.record_batch(
            run_id=run_id,
            batch_key=batch_key,
            events=[(key, p.user_key) for p in accepted for key in p.event_keys],
            hashes=[(p.user_key, p.attr_hash) for p in accepted],
            failures=failures,
        )
        report.users_sent += len(accepted)
        report.events_sent += sum(len(p.event_keys) for p in accepted)
        if failures:
            report.reject(VENDOR_REJECTED, len(failures))
    return report


def send_file(
    users_path: str | Path,
    *,
    state: StateStore,
    hook: InsiderHook,
    run_id: str,
    rejected_path: str | Path | None = None,
    mapping: Mapping | None = None,
    skip_hook: bool = False,
    error_callback_endpoint: str | None = None,
    max_users: int | None = None,
) -> SendReport:
    """DAG entry point: dead-letter the transform's rejected users, then send users.jsonl (streamed)."""
    report = SendReport()
    if rejected_path and exists(rejected_path):
        for reason, n in record_rejections(rejected_path, state=state, run_id=run_id).items():
            report.reject(reason, n)
    return send_users(
        iter_jsonl(users_path),
        state=state,
        hook=hook,
        run_id=run_id,
        mapping=mapping,
        skip_hook=skip_hook,
        error_callback_endpoint=error_callback_endpoint,
        report=report,
        max_users=max_users,
    )
