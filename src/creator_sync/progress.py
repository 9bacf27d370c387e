"""Progress lines for long loops: at most one human-readable log line every few seconds.

    progress = Progress("fetch accounts", total=expected_pages, unit="pages")
    for page in pages:
        ...
        progress.advance(1, records=len(page))
    progress.done()

A line reads ``fetch accounts: 40/120 pages (33%), records 4000, 2.1 pages/s, ETA 38 s``: the rate is
measured since the start, the ETA is shown only when the total is known. Only the label, the counts and
the names of the extra counters given by the caller appear, so no URL, header or payload can leak into a
line. The clock is injectable for tests.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

INTERVAL_ENV = "CREATOR_SYNC_PROGRESS_INTERVAL_S"
DEFAULT_INTERVAL_S = 10.0

_log = logging.getLogger("creator_sync.progress")


def default_interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        raise ValueError(
            f"{INTERVAL_ENV}={os.environ[INTERVAL_ENV]!r} is not a number of seconds; unset it or use e.g. 10"
        ) from None


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


class Progress:
    """Counts work and logs a line when ``interval`` seconds have passed since the last one."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "items",
        interval: float | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.interval = default_interval() if interval is None else interval
        self.log = log or _log
        self.clock = clock
        self.done_count = 0
        self.counters: dict[str, int] = {}
        self.started = clock()
        self._last_line = self.started

    def advance(self, n: int = 1, **counters: int) -> None:
        """``n`` more units done; ``counters`` are added to named totals shown on the line."""
        self.done_count += n
        for name, value in counters.items():
            self.counters[name] = self.counters.get(name, 0) + int(value)
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done_count / elapsed
        if self.total:
            parts = [f"{self.done_count}/{self.total} {self.unit} ({100 * self.done_count // self.total}%)"]
        else:
            parts = [f"{self.done_count} {self.unit}"]
        parts += [f"{name} {value}" for name, value in self.counters.items()]
        parts.append(f"{_rate(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.done_count < self.total:
            parts.append(f"ETA {_duration((self.total - self.done_count) / rate)}")
        return f"{self.label}: " + ", ".join(parts)

    def done(self) -> None:
        """The closing line (always logged): totals, average rate and the time taken."""
        now = self.clock()
        elapsed = now - self.started
        self.log.info("%s; finished in %s", self.line(now), _duration(elapsed))
