"""Batches sent without a recorded answer (in-flight markers): when one may be probed, and settling it.

A marker names the attempt that sent it (its fence) and carries that attempt's lease, renewed before every
request the attempt sends. A marker may be probed once its lease plus the settle time has passed: an owner
that is alive renews it and settles its own markers, and a request sent before the lease ended has been
processed (if at all) by then. A later attempt of the same run waits for that moment instead of skipping
the marker; another run probes a marker when it is due or when it claims one of the marker's users.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from creator_sync.pipeline.settle import UserVerdict, settle_users
from creator_sync.reasons import UNSETTLED_LOST_ANSWER
from creator_sync.store import OUTCOME_SENT, InFlight

if TYPE_CHECKING:
    from creator_sync.pipeline.send import _Send

log = logging.getLogger(__name__)


def marker_users(record: dict) -> list[dict]:
    """The users of a marker (records of the previous release carry hashes and event keys only: their users
    have no events to probe by identity, see ``_legacy``)."""
    if record.get("v") == 2:
        return record["users"]
    events: dict[str, list[dict]] = {}
    for key, user in record.get("events") or []:
        events.setdefault(user, []).append({"key": key, "legacy": True})
    return [
        {"user_key": u, "attr_hash": h, "user": {"identifiers": {"uuid": u}}, "events": events.get(u, [])}
        for u, h in record.get("hashes") or []
    ]


def settlement(users: list[dict], verdicts: list[UserVerdict], run_id: str):
    """What to record for settled users (``verdicts`` in the order of ``users``): (events, hashes, dead
    letters, outcomes, users to send again). A hash the offboarding purge blanked is not written back."""
    events, hashes, letters, outcomes, again = [], [], [], [], []
    for entry, v in zip(users, verdicts, strict=True):
        u = entry["user_key"]
        owner = {e["key"]: e for e in entry["events"]}
        events += [(k, u) for k in v.found + v.unverifiable]  # unverifiable: held, never re-sent blindly
        if v.arrived:
            if entry["attr_hash"]:
                hashes.append((u, entry["attr_hash"]))
            outcomes.append((u, OUTCOME_SENT, len(v.found)))
            continue
        if v.unverifiable:
            letters.append(_unsettled_letter(entry, v, owner))
            outcomes.append((u, UNSETTLED_LOST_ANSWER, 0))
            continue
        user = dict(entry["user"])
        keep = set(v.missing)
        resend = [
            e
            for e, meta in zip(user.get("events") or [], entry["events"], strict=False)
            if meta["key"] in keep
        ]
        user.pop("events", None)
        if resend:
            user["events"] = resend
        again.append({**entry, "user": user, "events": [e for e in entry["events"] if e["key"] in keep]})
    return events, hashes, letters, outcomes, again


def _unsettled_letter(entry: dict, v: UserVerdict, owner: dict) -> dict:
    names = sorted({owner[k]["event_name"] for k in v.unverifiable if "event_name" in owner[k]})
    return {
        "user_key": entry["user_key"],
        "reason": UNSETTLED_LOST_ANSWER,
        "detail": (
            f"an upsert's answer was lost and the Profile API returned {', '.join(names) or 'the events'} "
            f"without the params that identify them ({len(v.unverifiable)} event(s)); they are held, not "
            "sent again: check the user at Insider, and send what is missing by hand"
        ),
        "payload": entry["user"],
    }


def _legacy(users: list[dict]) -> list[UserVerdict]:
    """A marker of the previous release holds event keys, not the events: it cannot be settled by identity,
    so its events are held and dead-lettered (never guessed) and its attribute-only users sent again."""
    return [UserVerdict(unverifiable=[e["key"] for e in u["events"]]) for u in users]


def settle_marker(ctx: _Send, marker: InFlight) -> list[dict]:
    """Probe every user of an earlier attempt's marker (its probe time has passed) and record what arrived;
    returns the marker entries of the users to send again (their events were not found)."""
    users = marker_users(marker.record)
    legacy = any(e.get("legacy") for u in users for e in u["events"])
    verdicts = (
        _legacy(users)
        if legacy
        else settle_users(
            ctx.hook,
            users,
            ctx.probe,
            before_attempt=ctx.renew,
            waited_s=ctx.probe.settle_s,
            sleep=ctx.sleep,
            sent_at=marker.record.get("sent_at"),
        )
    )
    events, hashes, letters, outcomes, again = settlement(users, verdicts, marker.run_id)
    ctx.state.record_batch(
        run_id=marker.run_id,
        batch_key=marker.batch_key,
        events=events,
        hashes=hashes,
        failures=letters,
        outcomes=outcomes,
        fence=ctx.fence if ctx.claims else None,
        keep_marker=bool(again),  # dropped once the users to send again are answered (or re-marked)
    )
    ctx.report.in_flight_confirmed += sum(1 for v in verdicts if v.arrived)
    ctx.report.in_flight_resent += len(again)
    if letters:
        ctx.report.reject(UNSETTLED_LOST_ANSWER, len(letters))
    log.info(
        "unanswered batch %s of %s settled: %d user(s) at Insider, %d to send again, %d held (unverifiable)",
        marker.batch_key,
        marker.fence,
        len(hashes),
        len(again),
        len(letters),
    )
    return again


def resolve_markers(ctx: _Send, users: Iterable[str] | None = None) -> set[str]:
    """Settle the markers this attempt is responsible for; returns the user keys of markers it could not
    settle (their users must not be planned now).

    ``users=None`` (the send's start): markers whose probe time has passed and every marker of an earlier
    attempt of this run (waiting for its probe time). Otherwise the markers holding any of ``users`` (just
    claimed). A marker is settled by an attempt that claims all of its users; one that cannot lets go of
    them (at the send's start here, a chunk's in the planner), so that two runs each holding one user of
    the same marker do not keep each other from settling it. Its users not found at Insider
    are sent again: from the marker's copy, under the marker's run, when another run sent it; by the planner
    (from the users file) when an earlier attempt of this run did."""
    wanted = None if users is None else set(users)
    blocked: set[str] = set()
    for marker in ctx.state.in_flight_markers():
        if marker.fence == ctx.fence:
            continue
        keys = {u["user_key"] for u in marker_users(marker.record)}
        due = marker.lease_until + ctx.probe.settle_s
        if wanted is None and marker.run_id != ctx.run_id and due > ctx.state.clock():
            continue  # another run's batch, its lease running: that run settles it
        if wanted is not None and not wanted & keys:
            continue
        if not ctx.hold(keys):
            blocked |= keys
            if wanted is None:  # the send's start: nothing planned yet, let go what was taken
                ctx.state.release_keys(ctx.fence, keys)
            continue
        _wait_until(ctx, due, f"attempt {marker.fence} may still be sending batch {marker.batch_key}")
        again = settle_marker(ctx, marker)
        if marker.run_id != ctx.run_id:  # this run's own users are planned again from its users file
            ctx.send_again(again, owner=marker.run_id)
        if again:
            ctx.state.forget_in_flight(marker.batch_key)
    return blocked


def _wait_until(ctx: _Send, moment: float, why: str) -> None:
    """Sleep until ``moment`` (epoch s), renewing this attempt's leases meanwhile."""
    first = True
    while (left := moment - ctx.state.clock()) > 0:
        if first:
            log.info("waiting %.0f s before probing: %s", left, why)
            first = False
        ctx.sleep(min(left, max(ctx.lease_s / 3, 0.05)))
        ctx.renew()


def wait_for_own_run(ctx: _Send, keys: list[str]) -> None:
    """Wait while an earlier attempt of this run (a zombie the scheduler gave up on) holds claims on
    ``keys`` under a live lease: it may still be sending them, and it releases them when it ends."""
    while True:
        holders = ctx.state.claim_holders(keys)
        now = ctx.state.clock()
        same = [
            lease
            for run, fence, lease in holders.values()
            if run == ctx.run_id and fence != ctx.fence and lease >= now
        ]
        if not same:
            return
        why = f"an earlier attempt of {ctx.run_id} holds {len(same)} claim(s) under a live lease"
        _wait_until(ctx, max(same) + 0.01, why)
