"""In-process sliding window (thread-safe): the ``local`` backend."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable

from creator_sync.http.limiter.base import Reservation, WindowLimiter
from creator_sync.http.limiter.window import decide


class SlidingWindowLimiter(WindowLimiter):
    """Sends of this process only. ``clock``/``sleep`` are injectable for tests."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str = "local",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
        burst: float = 1.0,
    ) -> None:
        super().__init__(limit, window, name=name, sleep=sleep, pace=pace, burst=burst)
        self._clock = clock
        self._sends: collections.deque[Reservation] = collections.deque()
        self._lock = threading.Lock()

    def _try(self, cost: float) -> tuple[Reservation | None, float]:
        now = self._clock()
        while self._sends and self._sends[0].at <= now - self.window:
            self._sends.popleft()
        wait = decide(
            ((r.at, r.cost) for r in self._sends),
            now,
            cost,
            limit=self.limit,
            window=self.window,
            pace=self.pace,
            burst=self.burst,
        )
        if wait > 0:
            return None, wait
        res = Reservation(uuid.uuid4().hex, cost, now)
        self._sends.append(res)
        return res, 0.0

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            with self._lock:
                res, wait = self._try(cost)
            if res is not None:
                self.stats.acquired += 1
                return res
            self._waited(wait)
            self._sleep(wait)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        with self._lock:
            reservation.cost = float(actual_cost)  # the deque holds the same object

    def sends_in_window(self) -> float:
        with self._lock:
            now = self._clock()
            return sum(r.cost for r in self._sends if r.at > now - self.window)
