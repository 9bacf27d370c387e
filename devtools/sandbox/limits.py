"""Fixed-window limiter: window index = floor(t / window), aligned to the epoch, per key.

Every arriving request is counted first (``attempted``), then the limit decides: accepted units are
counted separately, rejections report Retry-After (whole seconds, at least 1) until the window ends.

Self-checks exposed in /_sandbox/stats:
- ``attempted_max_in_window`` / ``attempted_windows_over_limit``: units that ARRIVED per window, accepted or
  not. A client that sends into a full window pushes these over the limit, so a broken client limiter is
  visible even when the sandbox rejects the excess with 429.
- ``attempted_over_limit``: requests that ARRIVED into an already full window (the ones the vendor has to
  refuse); 0 for a client whose limiter is right.
- ``attempted_max_in_sliding_window``: the most units that arrived in ANY interval of ``window`` seconds,
  whatever its alignment. At most ``rate`` means no fixed-window vendor would have refused one, however
  its windows are aligned to ours (the epoch alignment here is one of them).
- ``max_in_window`` / ``windows_over_limit``: accepted units (never over the limit by construction; kept as
  a check of the sandbox itself).
"""

from __future__ import annotations

import collections
import math
import time


class FixedWindowLimiter:
    def __init__(self, name: str, rate: float, window: float) -> None:
        self.name = name
        self.rate = rate
        self.window = window
        self.reset()

    def reset(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._attempted: dict[str, tuple[int, float]] = {}
        self.max_in_window = 0.0
        self.windows_over_limit = 0
        self.attempted_max_in_window = 0.0
        self.attempted_windows_over_limit = 0
        self.attempted_over_limit = 0
        self._arrivals: dict[str, collections.deque[tuple[float, float]]] = {}
        self._arrived_in_sliding: dict[str, float] = {}
        self.attempted_max_in_sliding_window = 0.0
        self.rejected = 0
        self.total_accepted = 0.0

    def used(self, key: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        index, count = self._counts.get(key, (-1, 0.0))
        return count if index == math.floor(now / self.window) else 0.0

    def _attempt(self, key: str, index: int, cost: float, now: float) -> None:
        current, count = self._attempted.get(key, (index, 0.0))
        if current != index:
            count = 0.0
        count += cost
        self._attempted[key] = (index, count)
        self.attempted_max_in_window = max(self.attempted_max_in_window, count)
        if count > self.rate:
            self.attempted_over_limit += 1
            if count - cost <= self.rate:
                self.attempted_windows_over_limit += 1
        self._slide(key, cost, now)

    def _slide(self, key: str, cost: float, now: float) -> None:
        """Units that arrived in (now - window, now]; the busiest interval of any alignment ends at an
        arrival, so the maximum of this over all arrivals is the worst any vendor alignment could see."""
        arrivals = self._arrivals.setdefault(key, collections.deque())
        total = self._arrived_in_sliding.get(key, 0.0)
        while arrivals and arrivals[0][0] <= now - self.window:
            total -= arrivals.popleft()[1]
        arrivals.append((now, cost))
        total += cost
        self._arrived_in_sliding[key] = total
        self.attempted_max_in_sliding_window = max(self.attempted_max_in_sliding_window, total)

    def acquire(self, key: str, cost: float = 1.0, now: float | None = None) -> int | None:
        """Count ``cost`` arriving units for ``key``, then decide: None when accepted, else Retry-After
        seconds."""
        now = time.time() if now is None else now
        index = math.floor(now / self.window)
        self._attempt(key, index, cost, now)
        current, count = self._counts.get(key, (index, 0.0))
        if current != index:
            count = 0.0
        if count + cost > self.rate:
            self.rejected += 1
            return max(1, math.ceil((index + 1) * self.window - now))
        count += cost
        self._counts[key] = (index, count)
        self.total_accepted += cost
        self.max_in_window = max(self.max_in_window, count)
        if count > self.rate and count - cost <= self.rate:
            self.windows_over_limit += 1
        return None

    def stats(self) -> dict:
        return {
            "rate": self.rate,
            "window": self.window,
            "max_in_window": _number(self.max_in_window),
            "windows_over_limit": self.windows_over_limit,
            "attempted_max_in_window": _number(self.attempted_max_in_window),
            "attempted_windows_over_limit": self.attempted_windows_over_limit,
            "attempted_over_limit": self.attempted_over_limit,
            "attempted_max_in_sliding_window": _number(round(self.attempted_max_in_sliding_window, 9)),
            "rejected": self.rejected,
        }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
