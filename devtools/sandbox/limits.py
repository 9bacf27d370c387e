"""Fixed-window limiter: window index = floor(t / window), aligned to the epoch, per key.

Only accepted units are counted; rejections report Retry-After (whole seconds, at least 1) until the
window ends. ``max_in_window`` and ``windows_over_limit`` are self-checks exposed in /_sandbox/stats.
"""

from __future__ import annotations

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
        self.max_in_window = 0.0
        self.windows_over_limit = 0
        self.rejected = 0
        self.total_accepted = 0.0

    def used(self, key: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        index, count = self._counts.get(key, (-1, 0.0))
        return count if index == math.floor(now / self.window) else 0.0

    def acquire(self, key: str, cost: float = 1.0, now: float | None = None) -> int | None:
        """Count ``cost`` units for ``key``; returns None when accepted, else Retry-After seconds."""
        now = time.time() if now is None else now
        index = math.floor(now / self.window)
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
        maximum = self.max_in_window
        return {
            "rate": self.rate,
            "window": self.window,
            "max_in_window": int(maximum) if float(maximum).is_integer() else maximum,
            "windows_over_limit": self.windows_over_limit,
            "rejected": self.rejected,
        }
