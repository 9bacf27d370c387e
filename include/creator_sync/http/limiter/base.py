"""What every limiter backend offers: ``acquire(cost)`` -> ``Reservation``, ``settle``, counters."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Reservation:
    """A recorded send; ``settle`` corrects its cost once the real cost is known."""

    id: str
    cost: float
    at: float


@dataclass
class LimiterStats:
    acquired: int = 0
    waited_seconds: float = 0.0
    waits: int = 0


class Limiter:
    """Interface: ``acquire(cost)`` blocks until the send fits, records it and returns a reservation."""

    limit: float
    window: float
    name: str
    stats: LimiterStats

    def acquire(self, cost: float = 1.0) -> Reservation:
        raise NotImplementedError

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        """Replace a reservation's estimated cost by the actual one (quota-unit limiters)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.limit:g} per {self.window:g}s)"

    def __repr__(self) -> str:
        return self.describe()

    def _waited(self, seconds: float) -> None:
        self.stats.waits += 1
        self.stats.waited_seconds += seconds


class UnlimitedLimiter(Limiter):
    def __init__(self, name: str = "unlimited") -> None:
        self.name, self.limit, self.window, self.stats = name, math.inf, 0.0, LimiterStats()

    def acquire(self, cost: float = 1.0) -> Reservation:
        self.stats.acquired += 1
        return Reservation(uuid.uuid4().hex, cost, time.time())

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        reservation.cost = actual_cost


class WindowLimiter(Limiter):
    """What every sliding-window backend shares: the checked limit, window and burst, its name, whether it
    paces sends, the sleep it waits with, and its counters."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
        burst: float = 1.0,
    ) -> None:
        from creator_sync.http.limiter.window import check_burst, check_limit

        check_limit(limit, window)
        check_burst(burst)
        self.limit, self.window, self.name, self.pace = float(limit), float(window), name, pace
        self.burst = float(burst)
        self._sleep = sleep
        self.stats = LimiterStats()
