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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from creator_sync.http.errors import CreatorSyncConfigError

if TYPE_CHECKING:
    from creator_sync.hooks.insider import InsiderHook

log = logging.getLogger(__name__)

SETTLE_ENV = "CREATOR_SYNC_LOST_ANSWER_SETTLE_S"
PROBE_ROUNDS_ENV = "CREATOR_SYNC_PROBE_ROUNDS"
PROBE_BACKOFF_ENV = "CREATOR_SYNC_PROBE_BACKOFF_S"
SETTLE_MAX_S = 60.0  # the default settle time is the client's read timeout, at most this
DEFAULT_PROBE_ROUNDS = 3
DEFAULT_PROBE_BACKOFF_S = 5.0
RECORD_VERSION = 2


def _env_float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise CreatorSyncConfigError(f"{name}={raw!r} is invalid: give a number >= {minimum:g}")
    return value


@dataclass(frozen=True)
class ProbeSettings:
    """How a lost answer is settled: wait ``settle_s`` (a request still held by a proxy is processed
    within it), then up to ``rounds`` Profile API rounds, ``backoff_s`` apart and doubling (Insider's
    ingestion lag)."""

    settle_s: float = 1.0
    rounds: int = DEFAULT_PROBE_ROUNDS
    backoff_s: float = DEFAULT_PROBE_BACKOFF_S

    @property
    def total_wait_s(self) -> float:
        """The longest an event may take to show in the Profile API and still be found."""
        return self.settle_s + sum(self.backoff_s * 2**i for i in range(self.rounds - 1))

    @classmethod
    def from_env(cls, read_timeout_s: float | None) -> ProbeSettings:
        default = min(float(read_timeout_s), SETTLE_MAX_S) if read_timeout_s else 1.0
        return cls(
            settle_s=_env_float(SETTLE_ENV, default, 0.0),
            rounds=int(_env_float(PROBE_ROUNDS_ENV, DEFAULT_PROBE_ROUNDS, 1)),
            backoff_s=_env_float(PROBE_BACKOFF_ENV, DEFAULT_PROBE_BACKOFF_S, 0.0),
        )


def expected_event(key: str, event: dict, key_params: tuple[str, ...] | None) -> dict:
    """What identifies one sent event in the Profile API: name, timestamp and the values to match."""
    params = event.get("event_params") or {}
    custom = params.get("custom") or {}
    names = key_params or tuple(k for k in {**params, **custom} if k != "custom")
    match = {n: params.get(n, custom.get(n)) for n in names}
    return {
        "key": key,
        "event_name": event.get("event_name"),
        "timestamp": event.get("timestamp"),
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


def _epoch(value: str | None) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _probe_identifiers(user: dict) -> dict:
    ids = user.get("identifiers") or {}
    return {"uuid": ids["uuid"]} if ids.get("uuid") else dict(ids)


def _row_value(row: dict, name: str) -> Any:
    for key in (name, f"c_{name}"):
        if key in row:
            return row[key]
    return None


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def _look(hook: InsiderHook, entry: dict, before_attempt: Callable[[], None] | None) -> dict[str, str]:
    """One Profile API call for one user: event key -> found | missing | unverifiable."""
    events = entry["events"]
    times = [t for t in (_epoch(e["timestamp"]) for e in events) if t is not None]
    start = int(min(times)) - 1 if times else int(time.time()) - 86_400
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
        rows = (
            [r for r in (result.events.get(e["event_name"]) or []) if isinstance(r, dict)]
            if result.found
            else []
        )
        if any(all(_same(_row_value(r, k), v) for k, v in e["match"].items()) for r in rows):
            out[e["key"]] = "found"
        elif rows and e["match"] and not any(_row_value(r, k) is not None for r in rows for k in e["match"]):
            out[e["key"]] = "unverifiable"
        else:
            out[e["key"]] = "missing"
    return out


def settle_users(
    hook: InsiderHook,
    entries: list[dict],
    settings: ProbeSettings,
    *,
    before_attempt: Callable[[], None] | None = None,
    waited_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, UserVerdict]:
    """Per user (marker entries of ``marker_user``): which of its events Insider holds. Waits the settle time
    (less ``waited_s`` already passed) before the first round; users with events not yet found are asked
    again after the backoff. Attribute-only users get an empty verdict without a call."""
    verdicts = {e["user_key"]: UserVerdict() for e in entries}
    state: dict[str, dict[str, str]] = {e["user_key"]: {} for e in entries if e["events"]}
    if not state:
        return verdicts
    by_key = {e["user_key"]: e for e in entries}
    if settings.settle_s > waited_s:
        sleep(settings.settle_s - waited_s)
    for round_no in range(settings.rounds):
        open_users = [u for u, seen in state.items() if any(v != "found" for v in seen.values()) or not seen]
        if not open_users:
            break
        if round_no:
            wait = settings.backoff_s * 2 ** (round_no - 1)
            log.info("%d user(s) not found yet at Insider; asking again in %.0f s", len(open_users), wait)
            sleep(wait)
        for user in open_users:
            seen = _look(hook, by_key[user], before_attempt)
            state[user] = {k: ("found" if state[user].get(k) == "found" else v) for k, v in seen.items()}
    for user, seen in state.items():
        v = verdicts[user]
        for key, what in seen.items():
            getattr(v, what).append(key)
    return verdicts


def epoch_seconds(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
