"""Send Insider users exactly once: ledger filter -> hook batches -> one state transaction per 200 response.

Before planning, per user: events already acknowledged are dropped (event ledger); a user whose
identifiers+attributes hash equals the last acknowledged one and who has no new events is skipped
(`unchanged`); one whose attributes are unchanged but who has new events is sent with identifiers+events
only. After each 200 response, one transaction records the accepted users' events and attribute hashes and
dead-letters the failed users with Insider's messages. A retried task or a re-run of the same interval
therefore resumes from the ledger. A request whose answer never came back (timeout, dropped connection,
killed task) is never re-sent blindly: an in-flight marker written before the request lets the next attempt
ask Insider (Profile API probes) whether the batch arrived (resolve_in_flight).

Concurrent runs: before planning a chunk of users, the run claims their user keys in the state store (one
transaction, StateStore.claim). Users held by another live run are skipped and counted as
`claimed_elsewhere`; a claim whose lease (CLAIM_LEASE_ENV, default 600 s, renewed after every batch) has
passed belongs to a dead run and is taken over. Claims are released when the sender finishes.

Dry run: the same planning against the ledger (reads only), batches planned but not sent; the report's
`users_sent` / `events_sent` / `requests` are what WOULD be sent. Nothing is written: no claims, no ledger,
no in-flight markers, no dead letters, no per-run outcomes.

The hook is creator_sync.hooks.insider.InsiderHook (or a fake with the same two methods):
`plan_batches(users, skip_hook=, error_callback_endpoint=)` yields batches with `.users`, `.indices`
(positions in the input stream), `.rejected`, `.reason`; `upsert_batch(batch, skip_hook=,
error_callback_endpoint=)` returns a result with `.failed` (batch-local index -> messages).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creator_sync.files import exists, open_input
from creator_sync.http.errors import AmbiguousOutcomeError, CreatorSyncConfigError
from creator_sync.pipeline.keys import attribute_hash, event_key, user_key
from creator_sync.pipeline.mapping import Mapping, load_mapping
from creator_sync.pipeline.state import (
    OUTCOME_CLAIMED_ELSEWHERE,
    OUTCOME_OFFBOARDED,
    OUTCOME_SENT,
    OUTCOME_UNCHANGED,
    StateStore,
)
from creator_sync.pipeline.validate import MALFORMED_SOURCE_RECORD, USER_TOO_LARGE, VENDOR_REJECTED
from creator_sync.progress import track

log = logging.getLogger(__name__)

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
    lost_answers: int = (
        0  # upserts whose answer was lost (checked with the Profile API, never blindly resent)
    )
    in_flight_confirmed: int = 0  # unanswered batches (this or an earlier attempt) that Insider had stored
    in_flight_resent: int = 0  # unanswered batches that had not arrived: sent or planned again
    claimed_elsewhere: int = 0  # users skipped because another live run holds their claim
    offboarded: int = 0  # users on the offboarding skip list by the time their chunk was claimed (not sent)
    unification_errors: int = 0  # sent users Insider later reported through the error callback
    dry_run: bool = False  # users_sent / events_sent / requests are what WOULD be sent

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
            "lost_answers": self.lost_answers,
            "in_flight_confirmed": self.in_flight_confirmed,
            "in_flight_resent": self.in_flight_resent,
            "claimed_elsewhere": self.claimed_elsewhere,
            "offboarded": self.offboarded,
            "unification_errors": self.unification_errors,
            "dry_run": self.dry_run,
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


def iter_users(path: str | Path, bad_lines: list[dict]) -> Iterator[dict]:
    """The user objects of a users.jsonl; a line that is not a JSON object is appended to `bad_lines` as a
    dead-letter row (reason malformed_source_record) instead of stopping the send."""
    with open_input(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
                problem = (
                    None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not a user object"
                )
            except ValueError as exc:
                value, problem = line.rstrip("\n")[:10_000], f"not valid JSON ({exc.msg})"
            if problem is None:
                yield value
                continue
            digest = hashlib.sha256(line.encode()).hexdigest()[:16]
            bad_lines.append(
                {
                    "user_key": f"malformed:users.jsonl:{digest}",
                    "reason": MALFORMED_SOURCE_RECORD,
                    "detail": f"{Path(path).name} line {number} is {problem}",
                    "payload": {"line": number, "value": value},
                }
            )


CLAIM_LEASE_ENV = "CREATOR_SYNC_CLAIM_LEASE_S"
DEFAULT_CLAIM_LEASE_S = 600.0


def claim_lease_s() -> float:
    """How long a run's claims stay live without renewal (the sender renews after every batch)."""
    raw = os.environ.get(CLAIM_LEASE_ENV, "").strip()
    try:
        lease = float(raw) if raw else DEFAULT_CLAIM_LEASE_S
    except ValueError:
        lease = -1.0
    if lease <= 0:
        from creator_sync.http.errors import CreatorSyncConfigError

        raise CreatorSyncConfigError(
            f"{CLAIM_LEASE_ENV}={raw!r} is invalid: give the claim lease in seconds (> 0, default "
            f"{DEFAULT_CLAIM_LEASE_S:.0f}); it must exceed the longest single upsert request with its "
            "retries."
        )
    return lease


def record_rejections(
    rejected_path: str | Path, *, state: StateStore | None, run_id: str, chunk: int = 1000
) -> Counter:
    """Dead-letter the transform's rejected records (idempotent); returns records per reason.
    `state=None` (dry run) only counts them."""
    counts: Counter = Counter()
    rows = iter_jsonl(rejected_path)
    while part := list(islice(rows, chunk)):
        if state is not None:
            state.add_dead_letters(run_id, part)
        counts.update(r["reason"] for r in part)
    return counts


class _Planner:
    """Turns the users stream into what is left to send, remembering per stream index what to record.

    Per chunk of `chunk` users: claim them (unless dry run), then read the ledger for the claimed ones, so a
    user is never planned from a ledger read that another run's in-progress send could still change."""

    def __init__(self, ctx: _Send, chunk: int):
        self.ctx, self.chunk = ctx, chunk
        self.state, self.report = ctx.state, ctx.report
        self.pending: dict[int, _Pending] = {}
        self.index = 0

    def _keys(self, uuid: str, user: dict) -> list[str]:
        m = self.ctx.mapping
        return [event_key(uuid, e, m.key_params(e.get("event_name"))) for e in user.get("events") or []]

    def _claimed(self, prepared: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        if self.ctx.dry_run or not self.ctx.claims:
            return prepared
        held = self.state.claim(self.ctx.run_id, (k for k, _ in prepared), self.ctx.lease_s)
        skipped = [k for k, _ in prepared if k not in held]
        if skipped:
            self.report.claimed_elsewhere += len(skipped)
            self.ctx.outcomes(
                [(k, OUTCOME_CLAIMED_ELSEWHERE, 0) for k in skipped],
            )
        return [(k, u) for k, u in prepared if k in held]

    def _not_offboarded(self, prepared: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """Drop users who went on the offboarding skip list after the transform ran. Checked AFTER the claim:
        the erase step claims a creator before erasing them, so either this run holds the claim (and the
        erase waits until it is released) or the skip list already names the creator here."""
        from creator_sync.offboard.skip import offboarded_ids

        gone = offboarded_ids((k for k, _ in prepared), store=self.state)
        if not gone:
            return prepared
        self.report.offboarded += len(gone)
        self.ctx.outcomes([(k, OUTCOME_OFFBOARDED, 0) for k in sorted(gone)])
        return [(k, u) for k, u in prepared if k not in gone]

    def __call__(self, users: Iterable[dict]) -> Iterator[dict]:
        users = iter(users)
        while part := list(islice(users, self.chunk)):
            prepared = self._not_offboarded(self._claimed([(user_key(u), u) for u in part]))
            prepared = [(k, u, attribute_hash(u), self._keys(k, u)) for k, u in prepared]
            acked = self.state.acknowledged_by(key for *_, keys in prepared for key in keys)
            known = self.state.attribute_hashes(k for k, *_ in prepared)
            unchanged = []
            for uuid, user, attr_hash, keys in prepared:
                new_events, new_keys = [], []
                for ev, key in zip(user.get("events") or [], keys, strict=True):
                    if key in acked or key in new_keys:
                        # acknowledged by an earlier attempt of this run: counted as sent by the run
                        if acked.get(key) != self.ctx.run_id:
                            self.report.events_already_acknowledged += 1
                    else:
                        new_events.append(ev)
                        new_keys.append(key)
                same = uuid in known and known[uuid][0] == attr_hash
                if same and not new_events:
                    self.report.unchanged += 1
                    unchanged.append((uuid, OUTCOME_UNCHANGED, 0))
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
            self.ctx.outcomes(unchanged)


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


def resolve_in_flight(state: StateStore, hook: InsiderHook, report: SendReport, run_id: str) -> None:
    """Batches sent without a recorded answer, by this run's earlier attempts or by a dead run (no live
    claim: a live run resolves its own): ask Insider (Profile API, one lookup per probe user) whether the
    batch arrived. Insider stores a request's valid users together, so any probe found means it arrived: its
    events and hashes are acknowledged, except those of probe users Insider does not hold (it rejected them;
    they are planned again and their rejection reaches the dead letters). No probe found: the batch is
    forgotten and its events stay unacknowledged, the planner sends them again."""
    live = state.live_claim_runs() - {run_id}
    for batch_key, owner, record in state.in_flight():
        if owner in live:
            continue
        probes = record.get("probes") or [record["probe"]]  # "probe": records of earlier versions
        missing = {p.get("user_key") for p in probes if not _event_landed(hook, p)}
        if len(missing) < len(probes):
            events = [tuple(e) for e in record["events"] if e[1] not in missing]
            hashes = [tuple(h) for h in record["hashes"] if h[0] not in missing]
            per_user = Counter(u for _, u in events)
            outcomes = [(u, OUTCOME_SENT, per_user.get(u, 0)) for u, _ in hashes]
            state.record_batch(
                run_id=owner,
                batch_key=batch_key,
                events=events,
                hashes=hashes,
                failures=[],
                outcomes=outcomes,
            )
            report.in_flight_confirmed += 1
        else:
            state.forget_in_flight(batch_key)
            report.in_flight_resent += 1


def epoch_seconds(value: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


@dataclass
class _Send:
    """One send: where it records, what it sends with, and its running report."""

    state: StateStore
    hook: InsiderHook
    run_id: str
    mapping: Mapping
    report: SendReport
    skip_hook: bool
    error_callback_endpoint: str | None
    dry_run: bool
    claims: bool
    lease_s: float

    def outcomes(self, rows: list[tuple[str, str, int]]) -> None:
        if rows and not self.dry_run:
            self.state.record_outcomes(self.run_id, rows)


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
    dry_run: bool = False,
    claims: bool = True,
    on_batch: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Send validated users (dicts = users[] elements) exactly once; see the module docstring. THE send loop
    of the code base: the Insider upsert operator (creator_sync) and the dead-letter replay use it.

    `max_users` lowers the users per request below Insider's 1,000 (smaller batches = less to re-send
    when a request fails); None keeps the hook's documented maximum. `claims=False` turns the concurrent-run
    claims off (one writer only). `on_batch(report)` is called after every answered batch (progress,
    persisting client counters)."""
    report = report or SendReport()
    report.dry_run = dry_run
    ctx = _Send(
        state=state,
        hook=hook,
        run_id=run_id,
        mapping=mapping or load_mapping(),
        report=report,
        skip_hook=skip_hook,
        error_callback_endpoint=error_callback_endpoint,
        dry_run=dry_run,
        claims=claims,
        lease_s=claim_lease_s() if claims and not dry_run else 0.0,
    )
    if not dry_run:
        resolve_in_flight(state, hook, report, run_id)
    try:
        _send_batches(ctx, _Planner(ctx, read_chunk), users, max_users, on_batch)
    finally:
        if claims and not dry_run:
            state.release_claims(run_id)
    return report


def _send_batches(ctx: _Send, planner: _Planner, users, max_users, on_batch) -> None:
    state, hook, report, run_id = ctx.state, ctx.hook, ctx.report, ctx.run_id
    kwargs = {"skip_hook": ctx.skip_hook, "error_callback_endpoint": ctx.error_callback_endpoint}
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
            if not ctx.dry_run:
                state.add_dead_letters(run_id, failures)
                ctx.outcomes([(p.user_key, USER_TOO_LARGE, 0) for p in pending])
            report.reject(USER_TOO_LARGE, len(failures))
            continue
        if ctx.dry_run:  # what would go out: counted, not sent
            report.requests += 1
            report.users_sent += len(pending)
            report.events_sent += sum(len(p.event_keys) for p in pending)
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
        answered = _upsert_checked(ctx, batch, pending, probes, batch_key, kwargs)
        if answered is None:  # the answer was lost and the Profile API showed the whole batch arrived
            _after_batch(ctx, on_batch)
            continue
        result, batch, pending, batch_key = answered
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
        outcomes = [(p.user_key, OUTCOME_SENT, len(p.event_keys)) for p in accepted]
        outcomes += [(f["user_key"], VENDOR_REJECTED, 0) for f in failures]
        state.record_batch(
            run_id=run_id,
            batch_key=batch_key,
            events=[(key, p.user_key) for p in accepted for key in p.event_keys],
            hashes=[(p.user_key, p.attr_hash) for p in accepted],
            failures=failures,
            outcomes=outcomes,
        )
        report.users_sent += len(accepted)
        report.events_sent += sum(len(p.event_keys) for p in accepted)
        if failures:
            report.reject(VENDOR_REJECTED, len(failures))
        _after_batch(ctx, on_batch)


def _after_batch(ctx: _Send, on_batch) -> None:
    if ctx.claims:
        ctx.state.renew_claims(ctx.run_id, ctx.lease_s)
    if on_batch is not None:
        on_batch(ctx.report)


LOST_ANSWER_CHECKS = 3  # per batch and task attempt; past that the batch stays in flight for the next attempt
LOST_ANSWER_SETTLE_MAX_S = 60.0


SETTLE_ENV = "CREATOR_SYNC_LOST_ANSWER_SETTLE_S"


def _settle_s(hook: InsiderHook) -> float:
    """How long to wait before asking the Profile API about a lost answer: $CREATOR_SYNC_LOST_ANSWER_SETTLE_S,
    else the client's read timeout (a request still held by a proxy would be processed within it), at most
    LOST_ANSWER_SETTLE_MAX_S."""
    raw = os.environ.get(SETTLE_ENV, "").strip()
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            raise CreatorSyncConfigError(f"{SETTLE_ENV} must be a number of seconds, got {raw!r}") from None
    timeout = getattr(getattr(hook.client, "_http", None), "timeout", None)
    read = getattr(timeout, "read", None)
    return min(float(read), LOST_ANSWER_SETTLE_MAX_S) if read else 1.0


def _upsert_checked(ctx: _Send, batch, pending: list[_Pending], probes, batch_key: str, kwargs):
    """Send one batch. When its answer is lost (AmbiguousOutcomeError: the client never re-sends such a
    request), ask the Profile API what arrived, in this attempt, before anything is sent again:

    - a probe user's event is at Insider: the request arrived; its users are acknowledged (as the next
      attempt's resolve_in_flight would), and probe users Insider does not hold (rejected inside that request)
      are sent again on their own, so their rejection reaches the dead letters;
    - no probe found: the request did not arrive; the same users are sent again;
    - a batch without events (attributes only) appends nothing at Insider: sent again without a check.

    Returns ``(result, batch, pending, batch_key)`` for the request that was answered, or None when the lost
    answer was settled by the Profile API alone. After LOST_ANSWER_CHECKS lost answers the error propagates:
    the batch stays in flight and the task's next attempt resolves it."""
    state, hook, report, run_id = ctx.state, ctx.hook, ctx.report, ctx.run_id
    for check in range(LOST_ANSWER_CHECKS + 1):
        try:
            result = hook.upsert_batch(batch, **kwargs)
            report.requests += 1
            return result, batch, pending, batch_key
        except AmbiguousOutcomeError as exc:
            report.lost_answers += 1
            if check == LOST_ANSWER_CHECKS:
                raise
            if not probes:
                log.warning(
                    "upsert answer lost (%s); the batch holds no events, sending it again", exc.outcome
                )
                continue
            settle = _settle_s(hook)
            log.warning(
                "upsert answer lost (%s); asking the Profile API about %d user(s) of the batch in %.0f s",
                exc.outcome,
                len(probes),
                settle,
            )
            time.sleep(settle)
            missing = {p["user_key"] for p in probes if not _event_landed(hook, p)}
            if len(missing) == len(probes):
                report.in_flight_resent += 1
                log.info(
                    "none of the probed events is at Insider: the batch did not arrive, sending it again"
                )
                continue
            report.in_flight_confirmed += 1
            arrived = [p for p in pending if p.user_key not in missing]
            state.record_batch(
                run_id=run_id,
                batch_key=batch_key,
                events=[(key, p.user_key) for p in arrived for key in p.event_keys],
                hashes=[(p.user_key, p.attr_hash) for p in arrived],
                failures=[],
                outcomes=[(p.user_key, OUTCOME_SENT, len(p.event_keys)) for p in arrived],
            )
            report.users_sent += len(arrived)
            report.events_sent += sum(len(p.event_keys) for p in arrived)
            if not missing:
                log.info("the batch arrived (Profile API): %d users acknowledged", len(arrived))
                return None
            keep = [i for i, p in enumerate(pending) if p.user_key in missing]
            log.info(
                "the batch arrived (Profile API) without %d probed user(s): sending those again", len(keep)
            )
            batch = _sub_batch(batch, keep)
            pending = [pending[i] for i in keep]
            batch_key = _batch_key(run_id, pending)
            probes = _probe_events(pending, batch.users)
            if probes:
                state.mark_in_flight(
                    run_id,
                    batch_key,
                    {
                        "events": [(key, p.user_key) for p in pending for key in p.event_keys],
                        "hashes": [(p.user_key, p.attr_hash) for p in pending],
                        "probes": probes,
                    },
                )
    raise AssertionError("unreachable")  # the loop returns or raises


def _sub_batch(batch, keep: list[int]):
    """The users ``keep`` (batch-local indices) of ``batch``, as a batch of their own."""
    encoded = [batch.encoded[i] for i in keep]
    return dataclasses.replace(
        batch,
        users=[batch.users[i] for i in keep],
        indices=[batch.indices[i] for i in keep],
        encoded=encoded,
        size_bytes=sum(len(e) for e in encoded),
    )


def send_file(
    users_path: str | Path,
    *,
    state: StateStore,
    hook: InsiderHook,
    run_id: str,
    rejected_path: str | Path | None = None,
    malformed_path: str | Path | None = None,
    mapping: Mapping | None = None,
    skip_hook: bool = False,
    error_callback_endpoint: str | None = None,
    max_users: int | None = None,
    dry_run: bool = False,
    claims: bool = True,
    on_batch: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Dead-letter the transform's rejected users (and malformed source records that are not users), then
    send users.jsonl (streamed). In a dry run the rejections are counted, not written."""
    report = SendReport()
    if rejected_path and exists(rejected_path):
        counts = record_rejections(rejected_path, state=None if dry_run else state, run_id=run_id)
        for reason, n in counts.items():
            report.reject(reason, n)
    if malformed_path and exists(malformed_path) and not dry_run:
        record_rejections(malformed_path, state=state, run_id=run_id)  # counted by the transform's stats
    bad_lines: list[dict] = []
    report = send_users(
        iter_users(users_path, bad_lines),
        state=state,
        hook=hook,
        run_id=run_id,
        mapping=mapping,
        skip_hook=skip_hook,
        error_callback_endpoint=error_callback_endpoint,
        report=report,
        max_users=max_users,
        dry_run=dry_run,
        claims=claims,
        on_batch=on_batch,
    )
    if bad_lines:
        if not dry_run:
            state.add_dead_letters(run_id, bad_lines)
        report.reject(MALFORMED_SOURCE_RECORD, len(bad_lines))
    return report
