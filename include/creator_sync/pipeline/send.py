"""Send Insider users exactly once: ledger filter -> hook batches -> one state transaction per 200 response.

Before planning, per user: events already acknowledged are dropped (event ledger); a user whose
identifiers+attributes hash equals the last acknowledged one and who has no new events is skipped
(`unchanged`); one whose attributes are unchanged but who has new events is sent with identifiers+events
only. After each 200 response, one transaction records the accepted users' events and attribute hashes and
dead-letters the failed users with Insider's messages. A retried task or a re-run of the same interval
therefore resumes from the ledger. A request whose answer never came back (timeout, dropped connection,
killed task) is never re-sent blindly: an in-flight marker (a copy of each user as sent) is written before
the request, and the lost answer is settled per user and per event with the Profile API (settle.py), in
this attempt or, when it died, by whoever next claims the users (in_flight.py).

Concurrent runs and attempts: before planning a chunk of users, the attempt claims their user keys in the
state store under its fencing token (one transaction, Claims.claim). Users held by an earlier attempt of
the same run are waited for. Users held by another live run are put aside: that run carries its own data
for them (another interval's events, another snapshot's attributes), not this run's, so they are sent after
the rest of the stream, once that run lets them go. Before each pass over the users put aside, the attempt
releases its own claims (everything it planned is answered and recorded by then), so two runs waiting on
each other's users cannot deadlock; the ledger, read after the claim, drops what the other run sent.
Past CREATOR_SYNC_CLAIM_WAIT_S the send fails (ClaimsHeldElsewhere) and the task's retry resumes from the
ledger. The dead-letter replay instead skips such users (`claimed_elsewhere`: their letters stay pending).
The lease (CREATOR_SYNC_CLAIM_LEASE_S, default 180 s) is renewed before every request; a claim whose
lease has passed belongs to a dead attempt and is taken over, and the attempt that lost it stops at its next
renewal or record (FencedOut). Claims are released when the sender finishes.

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
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creator_sync import settings
from creator_sync.errors import CreatorSyncError
from creator_sync.files import exists, open_input
from creator_sync.http.errors import AmbiguousOutcomeError
from creator_sync.pipeline.in_flight import resolve_markers, settlement, wait_for_own_run
from creator_sync.pipeline.keys import attribute_hash, event_key, user_key
from creator_sync.pipeline.settle import (
    RECORD_VERSION,
    ProbeSettings,
    expected_event,
    marker_user,
    settle_users,
)
from creator_sync.progress import track
from creator_sync.reasons import (
    MALFORMED_SOURCE_RECORD,
    UNSETTLED_LOST_ANSWER,
    USER_TOO_LARGE,
    VENDOR_REJECTED,
)
from creator_sync.store import (
    OUTCOME_CLAIMED_ELSEWHERE,
    OUTCOME_OFFBOARDED,
    OUTCOME_SENT,
    OUTCOME_UNCHANGED,
    StateStore,
    offboarded_ids,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # type hints only: no Airflow import at runtime
    from creator_sync.hooks.insider import InsiderHook
    from creator_sync.pipeline.mapping import Mapping


def _load_mapping() -> Mapping:
    """The mapping, imported where a send needs it: the report task imports this module for SendReport
    only, and the mapping modules load pandas."""
    from creator_sync.pipeline.mapping import load_mapping

    return load_mapping()


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
    in_flight_confirmed: int = 0  # users of unanswered batches whose events the Profile API showed at Insider
    in_flight_resent: int = 0  # users of unanswered batches not found at Insider: sent or planned again
    claimed_elsewhere: int = 0  # users skipped because another live run held their claim (replay only)
    waited_for_other_runs: int = 0  # users put aside while another live run held them, sent after it
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
            "waited_for_other_runs": self.waited_for_other_runs,
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


def claim_lease_s() -> float:
    """How long an attempt's claims stay live without renewal (``CREATOR_SYNC_CLAIM_LEASE_S``; the sender
    renews them before every request)."""
    return float(settings.current().claim_lease_s)


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

    Per chunk of `chunk` users: claim them (unless dry run), settle unanswered batches that hold any of them,
    then read the ledger for the claimed ones, so a user is never planned from a ledger read that another
    run's in-progress send could still change."""

    def __init__(self, ctx: _Send, chunk: int):
        self.ctx, self.chunk = ctx, chunk
        self.state, self.report = ctx.state, ctx.report
        self.pending: dict[int, _Pending] = {}
        self.index = 0
        self.put_aside: list[dict] = []  # users another live run held when their chunk was claimed
        self._waited: set[str] = set()

    def _keys(self, uuid: str, user: dict) -> list[str]:
        m = self.ctx.mapping
        return [event_key(uuid, e, m.key_params(e.get("event_name"))) for e in user.get("events") or []]

    def _claimed(self, prepared: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        if self.ctx.dry_run or not self.ctx.claims:
            return prepared
        keys = [k for k, _ in prepared]
        held = self.ctx.claim(keys)
        if len(held) < len(keys):
            wait_for_own_run(self.ctx, [k for k in keys if k not in held])
            held |= self.ctx.claim([k for k in keys if k not in held])
        blocked = resolve_markers(self.ctx, held) & held
        if blocked:  # not planned now: let go at once, so the run that can settle their batch takes them
            self.ctx.state.release_keys(self.ctx.fence, blocked)
        held -= blocked
        skipped = [k for k in keys if k not in held]
        if skipped and self.ctx.wait_for_claims:
            self.put_aside += [u for k, u in prepared if k not in held]
            self.report.waited_for_other_runs += len(set(skipped) - self._waited)
            self._waited.update(skipped)
        elif skipped:
            self.report.claimed_elsewhere += len(skipped)
            self.ctx.outcomes([(k, OUTCOME_CLAIMED_ELSEWHERE, 0) for k in skipped])
        return [(k, u) for k, u in prepared if k in held]

    def _not_offboarded(self, prepared: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """Drop users who went on the offboarding skip list after the transform ran. Checked AFTER the claim:
        the erase step claims a creator before erasing them, so either this run holds the claim (and the
        erase waits until it is released) or the skip list already names the creator here."""
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
            acked = self.state.acknowledged_of((uuid, key) for uuid, *_, keys in prepared for key in keys)
            known = self.state.attribute_hashes(k for k, *_ in prepared)
            unchanged, planned = [], set()
            for uuid, user, attr_hash, keys in prepared:
                new_events, new_keys = [], []
                for ev, key in zip(user.get("events") or [], keys, strict=True):
                    if key in acked or key in planned:
                        # acknowledged by an earlier attempt of this run: counted as sent by the run
                        if acked.get(key) != self.ctx.run_id:
                            self.report.events_already_acknowledged += 1
                    else:
                        new_events.append(ev)
                        new_keys.append(key)
                        planned.add(key)
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


def _pending_of(entries: list[dict]) -> list[_Pending]:
    """What to record for marker entries that are sent again."""
    return [_Pending(e["user_key"], e["attr_hash"], [m["key"] for m in e["events"]]) for e in entries]


def _batch_key(ctx: _Send, pending: list[_Pending]) -> str:
    """One batch of one attempt: the run, the attempt's fence and the batch's users (a later attempt's batch
    of the same users gets a marker of its own)."""
    digest = hashlib.sha256("\n".join([ctx.fence, *(p.user_key for p in pending)]).encode()).hexdigest()[:16]
    return f"{ctx.run_id}:{digest}"


def new_fence(run_id: str, try_number: int | None = None) -> str:
    """The fencing token of one task attempt: run, try number and a random part (two attempts never share
    one, even when Airflow starts the same try twice)."""
    return f"{run_id}#{try_number if try_number is not None else 0}#{secrets.token_hex(4)}"


@dataclass
class _Send:
    """One send attempt: where it records, what it sends with, its fence and lease, and its running report."""

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
    fence: str
    probe: ProbeSettings
    max_users: int | None = None
    sleep: Callable[[float], None] = time.sleep
    lost_answer_seen: bool = False
    wait_for_claims: bool = True  # put aside users another live run holds (False: skip them, replay)

    def outcomes(self, rows: list[tuple[str, str, int]]) -> None:
        if rows and not self.dry_run:
            self.state.record_outcomes(self.run_id, rows)

    def claim(self, keys: list[str]) -> set[str]:
        return self.state.claim(self.run_id, keys, self.lease_s, fence=self.fence)

    def hold(self, keys: set[str]) -> bool:
        """Claim all of ``keys`` for this attempt (waiting for an earlier attempt of this run); True if all
        are held."""
        if not self.claims:
            return True
        held = self.claim(list(keys))
        if held != keys:
            wait_for_own_run(self, sorted(keys - held))
            held |= self.claim(sorted(keys - held))
        return held == keys

    def renew(self, user_keys: Iterable[str] = ()) -> None:
        """Before every request: extend this attempt's leases, after checking it still holds the claims of
        ``user_keys`` (FencedOut otherwise: the request is not sent)."""
        if self.claims and not self.dry_run:
            self.state.renew(self.fence, self.lease_s, user_keys)

    @property
    def kwargs(self) -> dict:
        return {"skip_hook": self.skip_hook, "error_callback_endpoint": self.error_callback_endpoint}

    def send_again(self, entries: list[dict], owner: str) -> None:
        """Send the users of another run's settled marker that were not found at Insider (from the marker's
        copy), recorded under that run (its figures, not this run's). Creators offboarded since are not
        sent."""

        gone = offboarded_ids((e["user_key"] for e in entries), store=self.state)
        entries = [e for e in entries if e["user_key"] not in gone]
        if not entries:
            return
        pending = _pending_of(entries)
        users = [e["user"] for e in entries]
        owner_ctx = dataclasses.replace(self, run_id=owner, report=SendReport())
        for batch in self.hook.plan_batches(users, **self.kwargs):
            _send_batch(owner_ctx, batch, [pending[i] for i in batch.indices])


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
    fence: str | None = None,
    probe: ProbeSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wait_for_claims: bool = True,
) -> SendReport:
    """Send validated users (dicts = users[] elements) exactly once; see the module docstring. THE send loop
    of the code base: the Insider upsert operator (creator_sync) and the dead-letter replay use it.

    `max_users` lowers the users per request below Insider's limit (smaller batches = less to probe when
    an answer is lost); None keeps the hook's documented maximum. `claims=False` turns the concurrent-run
    claims and fencing off (one writer only). `on_batch(report)` is called after every answered batch
    (progress, persisting client counters). `fence`: this attempt's fencing token (new_fence); `probe`: how
    lost answers are settled (default ProbeSettings.from_env). `wait_for_claims=False` skips users another
    live run holds (`claimed_elsewhere`) instead of sending them once it lets them go."""
    report = report or SendReport()
    report.dry_run = dry_run
    ctx = _Send(
        state=state,
        hook=hook,
        run_id=run_id,
        mapping=mapping or _load_mapping(),
        report=report,
        skip_hook=skip_hook,
        error_callback_endpoint=error_callback_endpoint,
        dry_run=dry_run,
        claims=claims,
        lease_s=claim_lease_s() if claims and not dry_run else 0.0,
        fence=fence or new_fence(run_id),
        probe=probe or ProbeSettings.from_env(getattr(hook, "read_timeout_s", None)),
        max_users=max_users,
        sleep=sleep,
        wait_for_claims=wait_for_claims,
    )
    try:
        if not dry_run:
            resolve_markers(ctx)
        planner = _Planner(ctx, read_chunk)
        _send_batches(ctx, planner, users, on_batch)
        _send_put_aside(ctx, planner, on_batch)
    finally:
        if claims and not dry_run:
            state.release_claims(run_id, fence=ctx.fence)
    return report


class ClaimsHeldElsewhere(CreatorSyncError):
    """Users another live run held for longer than CREATOR_SYNC_CLAIM_WAIT_S: not sent by this attempt
    (the task fails; its retry resumes from the ledger and sends them)."""


def claim_wait_s() -> float:
    """How long a send waits for users another live run holds (``CREATOR_SYNC_CLAIM_WAIT_S``)."""
    return float(settings.current().claim_wait_s)


def _send_put_aside(ctx: _Send, planner: _Planner, on_batch) -> None:
    """Send the users another live run held when their chunk was claimed, once it lets them go. Each pass
    first releases this attempt's own claims (everything it planned is answered and recorded), so two runs
    waiting on each other's users both go on; the planner then claims and reads the ledger again, which
    drops what the other run sent."""
    deadline = ctx.state.clock() + claim_wait_s()
    while planner.put_aside:
        ctx.state.release_claims(ctx.run_id, fence=ctx.fence)
        users, planner.put_aside = planner.put_aside, []
        planner.index = 0  # the hook numbers each pass's stream from 0 (batch.indices)
        _send_batches(ctx, planner, users, on_batch)
        if not planner.put_aside:
            return
        held = ctx.state.claim_holders(user_key(u) for u in planner.put_aside)
        holders = sorted({run for run, *_ in held.values()})
        if ctx.state.clock() >= deadline:
            raise ClaimsHeldElsewhere(
                f"{len(planner.put_aside)} user(s) stayed claimed by other live run(s) {holders} for more "
                f"than CREATOR_SYNC_CLAIM_WAIT_S={claim_wait_s():g} s; this attempt sent everything else. "
                "The task's retry sends them once those runs finish (raise the setting if runs overlap "
                "for longer)."
            )
        log.info("waiting for %d user(s) held by run(s) %s", len(planner.put_aside), holders)
        ctx.sleep(min(5.0, max(ctx.lease_s / 3, 0.05)))


LOST_ANSWER_BATCH_USERS = 100  # users per request after a lost answer in this attempt (cheaper to probe)


def _send_batches(ctx: _Send, planner: _Planner, users, on_batch) -> None:
    report = ctx.report
    sizing = {"max_users": ctx.max_users} if ctx.max_users else {}
    for batch in track(
        ctx.hook.plan_batches(planner(users), **ctx.kwargs, **sizing),
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
            _reject_too_large(ctx, batch, pending)
            continue
        if ctx.dry_run:  # what would go out: counted, not sent
            report.requests += 1
            report.users_sent += len(pending)
            report.events_sent += sum(len(p.event_keys) for p in pending)
            continue
        parts = [list(range(len(pending)))]
        if ctx.lost_answer_seen and len(pending) > LOST_ANSWER_BATCH_USERS:
            n = LOST_ANSWER_BATCH_USERS
            parts = [list(range(i, min(i + n, len(pending)))) for i in range(0, len(pending), n)]
        for part in parts:
            sub = batch if len(parts) == 1 else _sub_batch(batch, part)
            _send_batch(ctx, sub, [pending[i] for i in part])
        if ctx.claims:
            ctx.renew()
        if on_batch is not None:
            on_batch(report)


def _reject_too_large(ctx: _Send, batch, pending: list[_Pending]) -> None:
    failures = [
        {"user_key": p.user_key, "reason": USER_TOO_LARGE, "detail": batch.reason or "", "payload": u}
        for p, u in zip(pending, batch.users, strict=True)
    ]
    if not ctx.dry_run:
        ctx.state.add_dead_letters(ctx.run_id, failures)
        ctx.outcomes([(p.user_key, USER_TOO_LARGE, 0) for p in pending])
    ctx.report.reject(USER_TOO_LARGE, len(failures))


def _marker_record(ctx: _Send, batch, pending: list[_Pending]) -> dict:
    users = []
    for p, user in zip(pending, batch.users, strict=True):
        events = [
            expected_event(key, ev, ctx.mapping.key_params(ev.get("event_name")))
            for key, ev in zip(p.event_keys, user.get("events") or [], strict=True)
        ]
        users.append(marker_user(p.user_key, user, p.attr_hash, events))
    return {"v": RECORD_VERSION, "sent_at": time.time(), "users": users}


LOST_ANSWER_CHECKS = 3  # lost answers per batch and attempt; past that the batch stays in flight


def _send_batch(ctx: _Send, batch, pending: list[_Pending]) -> None:
    """Send one batch and record its answer; a lost answer is settled per user (settle.py) and the users
    Insider does not hold are sent again, up to LOST_ANSWER_CHECKS times in this attempt."""
    state, report = ctx.state, ctx.report
    for _check in range(LOST_ANSWER_CHECKS + 1):
        keys = [p.user_key for p in pending]
        batch_key = _batch_key(ctx, pending)
        record = _marker_record(ctx, batch, pending)
        has_events = any(p.event_keys for p in pending)
        if has_events:  # events append at Insider: an unanswered request must be checked, not resent
            fence = ctx.fence if ctx.claims else None
            state.mark_in_flight(
                ctx.run_id, batch_key, record, fence=fence, lease_s=ctx.lease_s, user_keys=keys
            )
        try:
            result = ctx.hook.upsert_batch(batch, before_attempt=partial(ctx.renew, keys), **ctx.kwargs)
        except AmbiguousOutcomeError as exc:
            report.lost_answers += 1
            ctx.lost_answer_seen = True
            if _check == LOST_ANSWER_CHECKS:
                raise
            again = _settle_lost(ctx, exc, batch_key, record, has_events)
            if not again:
                return
            pending = _pending_of(again)
            (batch,) = list(ctx.hook.plan_batches([e["user"] for e in again], **ctx.kwargs))
            continue
        report.requests += 1
        _record_answer(ctx, result, batch, pending, batch_key)
        return


def _settle_lost(ctx: _Send, exc: AmbiguousOutcomeError, batch_key: str, record: dict, has_events: bool):
    """A lost answer: which users of the batch Insider holds. Records those; returns the rest (entries)."""
    users = record["users"]
    if not has_events:
        log.warning("upsert answer lost (%s); the batch holds attributes only: sending it again", exc.outcome)
        return users
    log.warning(
        "upsert answer lost (%s); asking the Profile API about the %d event-bearing user(s) of the batch "
        "in %.0f s",
        exc.outcome,
        sum(1 for u in users if u["events"]),
        ctx.probe.settle_s,
    )
    keys = [u["user_key"] for u in users]
    verdicts = settle_users(
        ctx.hook,
        users,
        ctx.probe,
        before_attempt=lambda: ctx.renew(keys),
        sleep=ctx.sleep,
        sent_at=record.get("sent_at"),
    )
    events, hashes, letters, outcomes, again = settlement(users, verdicts, ctx.run_id)
    ctx.state.record_batch(
        run_id=ctx.run_id,
        batch_key=batch_key,
        events=events,
        hashes=hashes,
        failures=letters,
        outcomes=outcomes,
        fence=ctx.fence if ctx.claims else None,
    )
    arrived = sum(1 for v in verdicts if v.arrived)
    ctx.report.in_flight_confirmed += arrived
    ctx.report.in_flight_resent += len(again)
    ctx.report.users_sent += arrived
    ctx.report.events_sent += sum(n for _, o, n in outcomes if o == OUTCOME_SENT)
    if letters:
        ctx.report.reject(UNSETTLED_LOST_ANSWER, len(letters))
    log.info(
        "Profile API: %d user(s) of the batch at Insider, %d to send again, %d held (unverifiable)",
        arrived,
        len(again),
        len(letters),
    )
    return again


def _record_answer(ctx: _Send, result, batch, pending: list[_Pending], batch_key: str) -> None:
    report = ctx.report
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
    ctx.state.record_batch(
        run_id=ctx.run_id,
        batch_key=batch_key,
        events=[(key, p.user_key) for p in accepted for key in p.event_keys],
        hashes=[(p.user_key, p.attr_hash) for p in accepted],
        failures=failures,
        outcomes=outcomes,
        fence=ctx.fence if ctx.claims else None,
    )
    report.users_sent += len(accepted)
    report.events_sent += sum(len(p.event_keys) for p in accepted)
    if failures:
        report.reject(VENDOR_REJECTED, len(failures))


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
    fence: str | None = None,
    wait_for_claims: bool = True,
) -> SendReport:
    """Dead-letter the transform's rejected users (and malformed source records that are not users), then
    send users.jsonl (streamed). In a dry run the rejections are counted, not written. `wait_for_claims`:
    see send_users."""
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
        fence=fence,
        wait_for_claims=wait_for_claims,
    )
    if bad_lines:
        if not dry_run:
            state.add_dead_letters(run_id, bad_lines)
        report.reject(MALFORMED_SOURCE_RECORD, len(bad_lines))
    return report
