"""The sliding-window decision, the one rule every limiter backend applies.

Invariant: in any interval of ``window`` seconds the recorded sends cost at most ``limit``. ``window`` is
the vendor's window stretched by a safety margin (``effective_window``), so a vendor counting in *fixed*
windows of the documented length never sees more than ``limit`` whatever their alignment and however
send-to-arrival latency varies (up to the margin).

Pacing (default on): consecutive sends are also spaced by ``window / limit`` (times the previous send's
cost), so a full budget goes out evenly instead of in bursts at window edges. Bursts arrive at the vendor
together and get counted with queueing delays that can exceed the margin; even spacing keeps the
send-to-count jitter small and the vendor's concurrent-request count low, at no cost in throughput.

The Redis backend runs the same rule as a Lua function (``shared_redis.DECIDE_LUA``); a test feeds both the
same sequences of send times and compares their answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from creator_sync.http.errors import CreatorSyncConfigError

EPS = 1e-9
MIN_WAIT = 1e-4  # never ask a caller to wait 0 s for a send that does not fit (no busy loop)


def effective_window(window: float, margin: float) -> float:
    """The vendor's window stretched by the safety margin (a fraction of the window)."""
    return window * (1.0 + margin)


def check_limit(limit: float, window: float) -> None:
    if not (limit > 0 and window > 0):
        raise CreatorSyncConfigError(f"rate limit must be positive, got {limit} per {window}s")


def decide(
    sends: Iterable[tuple[float, float]],
    now: float,
    cost: float,
    *,
    limit: float,
    window: float,
    pace: bool = True,
) -> float:
    """Seconds to wait before a send of ``cost`` may go at ``now``; ``0.0`` means it may go now.

    ``sends``: the recorded ``(time, cost)`` pairs, oldest first; sends at or before ``now - window`` no
    longer count. Pure: no clock, no state. A cost larger than the whole limit may go only into an empty
    window (it never deadlocks).
    """
    live = [(at, c) for at, c in sends if at > now - window]
    if pace and live:
        last_at, last_cost = live[-1]
        gap = last_at + window * min(last_cost, limit) / limit - now
        if gap > EPS:
            return gap
    used = 0.0
    for _, c in live:
        used += c
    if used + cost <= limit + EPS or not live:
        return 0.0
    # wait until enough of the oldest sends leave the window
    need = used + cost - limit
    freed = 0.0
    for at, c in live:
        freed += c
        if freed >= need - EPS:
            return max(at + window - now, MIN_WAIT)
    return max(live[-1][0] + window - now, MIN_WAIT)
