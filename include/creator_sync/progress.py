"""Progress lines for long loops: at most one human-readable log line every few seconds.

    progress = Progress("fetch accounts", total=expected_pages, unit="pages")
    for page in pages:
        ...
        progress.advance(1, records=len(page))
    progress.done()

or, for a loop whose body should stay untouched, ``for batch in track(batches, "upsert", unit="batches",
gauges=lambda: {"users": report.users_sent})``.

A line reads ``fetch accounts: 40/120 pages (33%), records 4000, 2.1 pages/s, ETA 38 s``: the rate is
measured since the start, the ETA is shown only when the total is known; ``gauges`` are read when a line
is written (e.g. a client's request counter). Only the label, the counts and the names the caller gives
appear, so no URL query, header or payload can leak into a line. A loop that ends before the first
interval logs nothing (many short lists stay quiet); a longer one ends with a "finished" line. The clock
is injectable for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

INTERVAL_ENV = "CREATOR_SYNC_PROGRESS_INTERVAL_S"

_log = logging.getLogger("creator_sync.progress")


def default_interval() -> float:
    from creator_sync import settings

    return settings.current().progress_interval_s


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
        gauges: Callable[[], dict[str, float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.gauges = label, total, unit, gauges
        self.interval = default_interval() if interval is None else interval
        self.log = log or _log
        self.clock = clock
        self.done_count = 0
        self.counters: dict[str, int] = {}
        self.started = clock()
        self._last_line = self.started
        self.lines = 0

    def advance(self, n: int = 1, **counters: int) -> None:
        """``n`` more units done; ``counters`` are added to named totals shown on the line."""
        self.done_count += n
        for name, value in counters.items():
            self.counters[name] = self.counters.get(name, 0) + int(value)
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.lines += 1
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
        for name, value in (self.gauges() if self.gauges else {}).items():
            parts.append(f"{name} {value} ({_rate(value / elapsed)}/s)")
        parts.append(f"{_rate(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.done_count < self.total:
            parts.append(f"ETA {_duration((self.total - self.done_count) / rate)}")
        return f"{self.label}: " + ", ".join(parts)

    def done(self, *, always: bool = False) -> None:
        """The closing line (totals, average rate, time taken), when the loop lasted an interval or more."""
        now = self.clock()
        elapsed = now - self.started
        if always or self.lines or elapsed >= self.interval:
            self.log.info("%s; finished in %s", self.line(now), _duration(elapsed))


def client_requests(client) -> Callable[[], dict[str, float]] | None:
    """A gauge of the requests sent by a VendorClient (``stats.requests``) or hook (``stats["requests"]``)."""
    if not hasattr(client, "stats"):
        return None

    def gauge() -> dict[str, float]:
        stats = client.stats
        return {"requests": int(stats.get("requests", 0) if isinstance(stats, dict) else stats.requests)}

    return gauge


def track(items: Iterable[T], label: str, **kwargs) -> Iterator[T]:
    """Yield ``items`` unchanged, one ``Progress`` unit each (``kwargs`` as for ``Progress``)."""
    progress = Progress(label, **kwargs)
    for item in items:
        yield item
        progress.advance(1)
    progress.done()
