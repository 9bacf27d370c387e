"""The sliding-window decision, the one rule every limiter backend applies.

Invariant: in any interval of ``window`` seconds the recorded sends cost at most ``limit``. ``window`` is
the vendor's window stretched by a safety margin (``effective_window``): a vendor counting ARRIVALS in
fixed windows of the documented length sees the sends of an interval ``window + jitter`` long, where jitter
is the spread of send-to-arrival delays; with ``margin x window >= jitter`` no fixed window, whatever its
alignment, ever holds more than ``limit``.

Pacing (default on) shapes the sends like a token bucket of ``burst`` ticks, one tick = ``window / limit``
per cost unit: a send waits until, for every k, the k newest recorded sends have had
``(their cost - (burst - 1)) x window / limit`` seconds since the oldest of them. ``burst = 1`` spaces
consecutive sends evenly by one tick (after a send of cost c, c ticks). ``burst = b`` lends up to ``b - 1``
ticks nobody was ready for (a client busy, a wake-up late) to the next ready client, so a late send does not
push every later one back; the average spacing and the sliding-window invariant are unchanged, and bursts
stay at most ``b`` sends, so the vendor's concurrency limit and the queueing jitter stay small.

The Redis backend runs the same rule as a Lua function (``shared_redis.DECIDE_LUA``); a test feeds both the
same sequences of send times and compares their answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from creator_sync.errors import CreatorSyncConfigError

EPS = 1e-9
MIN_WAIT = 1e-4  # never ask a caller to wait 0 s for a send that does not fit (no busy loop)


def effective_window(window: float, margin: float) -> float:
    """The vendor's window stretched by the safety margin (a fraction of the window)."""
    return window * (1.0 + margin)


def check_limit(limit: float, window: float) -> None:
    if not (limit > 0 and window > 0):
        raise CreatorSyncConfigError(f"rate limit must be positive, got {limit} per {window}s")


def check_burst(burst: float) -> None:
    if not burst >= 1:
        raise CreatorSyncConfigError(f"limiter burst must be >= 1 (1 = strict pacing), got {burst}")


def pacing_gap(
    live: list[tuple[float, float]], now: float, *, limit: float, window: float, burst: float
) -> float:
    """Seconds until the token-bucket pacing of ``burst`` ticks lets a send go (<= 0: it may go now)."""
    tick = window / limit
    lent = burst - 1.0
    gap, spent = -1.0, 0.0
    for at, c in reversed(live):
        spent += min(c, limit)
        if spent > lent + EPS:
            gap = max(gap, at + (spent - lent) * tick - now)
    return gap


def decide(
    sends: Iterable[tuple[float, float]],
    now: float,
    cost: float,
    *,
    limit: float,
    window: float,
    pace: bool = True,
    burst: float = 1.0,
) -> float:
    """Seconds to wait before a send of ``cost`` may go at ``now``; ``0.0`` means it may go now.

    ``sends``: the recorded ``(time, cost)`` pairs, oldest first; sends at or before ``now - window`` no
    longer count. Pure: no clock, no state. A cost larger than the whole limit may go only into an empty
    window (it never deadlocks). ``burst`` (>= 1, cost units): the pacing allowance described above.
    """
    live = [(at, c) for at, c in sends if at > now - window]
    if pace and live:
        gap = pacing_gap(live, now, limit=limit, window=window, burst=burst)
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
