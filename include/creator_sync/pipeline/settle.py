"""Settle a lost upsert answer per user and per event, by the event's identity (Profile API).

An upsert whose answer was lost (timeout, dropped connection, truncated body, gateway error) may or may not
have been processed, and Insider ingests each user of a request on its own ("evaluated separately at a
profile level"): some users of a request can be stored while others are rejected. So every user of such a
batch is decided on its own, and an event-bearing user's events are looked up one by one by their identity:
the event name and its key params (``key_params`` in the mapping: content id, transaction id), never by name
and time alone (a creator cross-posting has several items in the same second).

One Profile API call per event-bearing user asks for the user's event names over a window from the earliest
event's timestamp to now (so it holds whether Insider filters by the event's time or by its ingestion time)
with the key params as wanted params (both as named and with the ``c_`` prefix Insider uses for custom
fields). An expected event is **found** when a returned row carries the same key param values. Users and
events not found are probed again with backoff (Insider may show an upsert some seconds after it processed
it) before they are concluded **missing**. An event whose rows come back without any of its key params
cannot be identified: it is **unverifiable**.

Costs: one Profile API call per event-bearing user and round (quota ``1 + 0.5 x event names`` units),
through the hook's profile limiter; attribute-only users cost nothing (re-sending attributes is idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from creator_sync import settings
from creator_sync.pipeline.keys import canonical_timestamp, event_instant, key_value

if TYPE_CHECKING:
    from creator_sync.hooks.insider import InsiderHook

log = logging.getLogger(__name__)

SETTLE_ENV = "CREATOR_SYNC_LOST_ANSWER_SETTLE_S"  # the names tests set; creator_sync.settings reads them
PROBE_ROUNDS_ENV = "CREATOR_SYNC_PROBE_ROUNDS"
PROBE_BACKOFF_ENV = "CREATOR_SYNC_PROBE_BACKOFF_S"
SETTLE_MAX_S = 60.0  # the default settle time is the client's read timeout, at most this
RECORD_VERSION = 2


@dataclass(frozen=True)
class ProbeSettings:
    """How a lost answer is settled: wait ``settle_s`` (a request still held by a proxy is processed
    within it), then up to ``rounds`` Profile API rounds, ``backoff_s`` apart and doubling (Insider's
    ingestion lag)."""

    settle_s: float = 1.0
    rounds: int = 3
    backoff_s: float = 5.0

    @property
    def total_wait_s(self) -> float:
        """The longest an event may take to show in the Profile API and still be found."""
        return self.settle_s + sum(self.backoff_s * 2**i for i in range(self.rounds - 1))

    @classmethod
    def from_env(cls, read_timeout_s: float | None) -> ProbeSettings:
        """From the settings (``CREATOR_SYNC_LOST_ANSWER_SETTLE_S``, ``_PROBE_ROUNDS``, ``_PROBE_BACKOFF_S``);
        the settle time defaults to the client's read timeout, at most SETTLE_MAX_S."""
        current = settings.current()
        default = min(float(read_timeout_s), SETTLE_MAX_S) if read_timeout_s else 1.0
        settle = current.lost_answer_settle_s
        return cls(
            settle_s=default if settle is None else float(settle),
            rounds=int(current.probe_rounds),
            backoff_s=float(current.probe_backoff_s),
        )


def expected_event(key: str, event: dict, key_params: tuple[str, ...] | None) -> dict:
    """What identifies one sent event in the Profile API: name, timestamp and the values to match."""
    params = event.get("event_params") or {}
    custom = params.get("custom") or {}
    names = key_params or tuple(k for k in {**params, **custom} if k != "custom")
    match = {n: key_value(params.get(n, custom.get(n))) for n in names}
    return {
        "key": key,
        "event_name": event.get("event_name"),
        "timestamp": canonical_timestamp(event.get("timestamp")),
        "match": {k: v for k, v in match.items() if v is not None},
    }


def marker_user(user_key: str, user: dict, attr_hash: str, events: list[dict]) -> dict:
    """One user of an in-flight marker: enough to probe, acknowledge or send again (the user as sent)."""
    return {"user_key": user_key, "attr_hash": attr_hash, "user": user, "events": events}


@dataclass
class UserVerdict:
    found: list[str] = field(default_factory=list)  # event keys seen at Insider
    missing: list[str] = field(default_factory=list)  # event keys not seen after every round
    unverifiable: list[str] = field(default_factory=list)  # event keys Insider returned without key params

    @property
    def arrived(self) -> bool:
        """Every event of the user is at Insider (so was the rest of the user: one profile's write)."""
        return bool(self.found) and not self.missing and not self.unverifiable


def _epoch(value: object) -> float | None:
    instant = event_instant(value)
    return instant.timestamp() if instant else None


def _probe_identifiers(user: dict) -> dict:
    ids = user.get("identifiers") or {}
    return {"uuid": ids["uuid"]} if ids.get("uuid") else dict(ids)


def _row_value(row: dict, name: str) -> Any:
    for key in (name, f"c_{name}"):
        if key in row:
            return row[key]
    return None


INGESTED_SKEW_S = 5.0  # how far Insider's clock may trail ours when created_date is the ingestion time


def _this_time(row: dict, event: dict, sent_at: float | None) -> bool:
    """Whether a row with the event's key params is this event and not another copy of the item (an item
    re-dated by InsightIQ). Insider's rows carry ``created_date``, which the docs do not define: read as the
    event's own time it must be the event's timestamp (to the second); read as the ingestion time it must
    not be older than the request that carried the event. A row without it cannot tell copies apart."""
    created = _epoch(row.get("created_date"))
    if created is None:
        return True
    wanted = _epoch(event["timestamp"])
    if wanted is not None and abs(created - wanted) < 1.0:
        return True
    return sent_at is not None and created >= sent_at - INGESTED_SKEW_S


def _verdict(event: dict, rows: list[dict], sent_at: float | None) -> str:
    match = event["match"]
    same_item = [r for r in rows if match and all(str(_row_value(r, k)) == str(v) for k, v in match.items())]
    if any(_this_time(r, event, sent_at) for r in same_item):
        return "found"
    if not match or (rows and not any(_row_value(r, k) is not None for r in rows for k in match)):
        return "unverifiable"  # nothing identifies the event: never guessed from its name and time
    return "missing"


def _look(
    hook: InsiderHook, entry: dict, before_attempt: Callable[[], None] | None, sent_at: float | None
) -> dict[str, str]:
    """One Profile API call for one user: event key -> found | missing | unverifiable."""
    events = entry["events"]
    times = [t for t in (_epoch(e["timestamp"]) for e in events) if t is not None]
    if len(times) < len(events):
        return {e["key"]: "unverifiable" for e in events}  # no time window can hold such an event
    start = int(min(times)) - 1
    end = int(max([time.time(), *times])) + 1
    wanted: dict[str, set[str]] = {}
    for e in events:
        wanted.setdefault(e["event_name"], set()).update(
            n for name in e["match"] for n in (name, f"c_{name}")
        )
    query = {
        "start_date": start,
        "end_date": end,
        "wanted": [{"event_name": n, "params": sorted(p)} for n, p in sorted(wanted.items())],
    }
    result = hook.get_profile(
        identifiers=_probe_identifiers(entry["user"]),
        attributes=None,
        events=query,
        before_attempt=before_attempt,
    )
    out: dict[str, str] = {}
    for e in events:
        rows = result.events.get(e["event_name"]) or [] if result.found else []
        out[e["key"]] = _verdict(e, [r for r in rows if isinstance(r, dict)], sent_at)
    return out


def settle_users(
    hook: InsiderHook,
    entries: list[dict],
    settings: ProbeSettings,
    *,
    before_attempt: Callable[[], None] | None = None,
    waited_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    sent_at: float | None = None,
) -> list[UserVerdict]:
    """Per entry (``marker_user``s, in order; a user may appear twice): which of its events Insider holds.
    Waits the settle time (less ``waited_s`` already passed) before the first round; entries with events not
    yet found are asked again after the backoff. Attribute-only entries get an empty verdict without a call.
    ``sent_at``: when the batch went out (epoch s), for rows whose ``created_date`` is the ingestion time."""
    seen: dict[int, dict[str, str]] = {i: {} for i, e in enumerate(entries) if e["events"]}
    if seen and settings.settle_s > waited_s:
        sleep(settings.settle_s - waited_s)
    for round_no in range(settings.rounds if seen else 0):
        open_ = [i for i, got in seen.items() if not got or any(v != "found" for v in got.values())]
        if not open_:
            break
        if round_no:
            wait = settings.backoff_s * 2 ** (round_no - 1)
            log.info("%d user(s) not found yet at Insider; asking again in %.0f s", len(open_), wait)
            sleep(wait)
        for i in open_:
            got = _look(hook, entries[i], before_attempt, sent_at)
            seen[i] = {k: ("found" if seen[i].get(k) == "found" else v) for k, v in got.items()}
    verdicts = [UserVerdict() for _ in entries]
    for i, got in seen.items():
        for key, what in got.items():
            getattr(verdicts[i], what).append(key)
    return verdicts
