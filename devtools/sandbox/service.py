"""What every sandbox shares: limiters, fault injector, request counters and runtime configuration.

A concrete service (InsightIQ, Insider, web push) subclasses ``Service`` and implements ``gate`` (auth +
request-level limits, run by the middleware at request arrival) plus its own stats/reset/config extras.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from devtools.sandbox.faults import FaultInjector
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.readings import Readings

Release = Callable[[], None]
log = logging.getLogger(__name__)


def delay_summary(pairs: list[tuple[float, float]], sends_per_window: int | None = None) -> dict:
    """Send-to-arrival delays (``(sent, delay)`` pairs, seconds) in ms: count, min, p50, p99, max,
    ``spread`` = max - min and, given the limit, ``drop``: the largest amount by which a send's delay
    exceeds the delay of any send at least ``sends_per_window`` sends later. ``limit + 1`` arrivals can
    share one fixed vendor window only if two sends at least ``limit`` apart (so at least one limiter
    window apart) arrive closer than the vendor window, i.e. the earlier one's delay exceeds the later
    one's by more than the limiter's margin: ``margin x window >= drop`` keeps every window at the limit.
    ``spread`` bounds ``drop`` from above."""
    if not pairs:
        return {"count": 0}
    delays = sorted(d for _, d in pairs)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 3)

    def at(q: float) -> float:
        return ms(delays[min(len(delays) - 1, int(q * len(delays)))])

    summary = {
        "count": len(delays),
        "min": ms(delays[0]),
        "p50": at(0.5),
        "p99": at(0.99),
        "max": ms(delays[-1]),
        "spread": ms(delays[-1] - delays[0]),
    }
    if sends_per_window:
        by_send = [d for _, d in sorted(pairs)]
        n = int(sends_per_window)
        drop, later_min = 0.0, float("inf")
        for i in range(len(by_send) - 1 - n, -1, -1):
            later_min = min(later_min, by_send[i + n])
            drop = max(drop, by_send[i] - later_min)
        summary["drop"] = ms(drop)
        summary["drop_over_sends"] = n
    return summary


def _noop() -> None:
    return None


class Service:
    name = "service"
    # process a request even when its client disconnected before the answer (middleware); a service that
    # offers the option sets it from its configuration
    complete_after_disconnect = False

    def __init__(self, seed: int, faults: dict[str, float] | None = None, slow_seconds: float = 5.0) -> None:
        self.seed = seed
        self.limiters: dict[str, FixedWindowLimiter] = {}
        self.faults = FaultInjector(seed, self.name, faults, slow_seconds)
        self.readings = Readings()  # alternative readings of the vendor docs (readings.py); kept by reset
        self.reset_counters()

    # -- request accounting (called by the middleware; keep cheap) ---------------------------------
    def reset_counters(self) -> None:
        self.requests_by_status: Counter[str] = Counter()
        # a gauge, not a counter: requests still running when the counters are reset end later and
        # decrement it, so a reset keeps it
        self.inflight = getattr(self, "inflight", 0)
        self.max_concurrent = 0
        self.extra_429s = 0
        self.processed_after_disconnect = 0
        self.held_answers_delivered = 0
        self.held_usable_answers_delivered = 0
        self.send_to_arrival: list[tuple[float, float]] = []
        for limiter in self.limiters.values():
            limiter.reset()
        self.faults.reset()

    def note_held_answer(self, delivered: bool, status: int) -> None:
        """A ``slow`` or ``timeout_after`` fault's hold is over and its answer (``status``) goes out.
        ``delivered``: the client was still connected, so it may receive the answer after all (its read
        timeout started late, e.g. on a starved CPU, or is longer than the hold). Such an answer is counted
        as a fault; a usable one (below 400) costs the client nothing, so a report that counts the client's
        retries and failures misses exactly these."""
        if delivered:
            self.held_answers_delivered += 1
            if status < 400:
                self.held_usable_answers_delivered += 1

    def note_sent_at(self, raw: str, arrived: float) -> None:
        """One send-to-arrival delay: ``arrived`` (the limits' clock) minus the client's send time."""
        try:
            sent = float(raw)
        except ValueError:
            log.warning("ignoring unparsable X-Sandbox-Sent-At %r", raw[:40])
            return
        self.send_to_arrival.append((sent, arrived - sent))

    def gate(self, scope: dict, headers: Headers) -> tuple[Response | None, Release]:
        """Auth and request-level limits; a Response rejects the request before any work is done."""
        return None, _noop

    def error_body(self, status: int, message: str) -> dict:
        """This vendor's error body shape (used for injected faults)."""
        return {"error": message}

    def rate_limited(self, body: dict, retry_after: int) -> Response:
        return JSONResponse(body, status_code=429, headers={"Retry-After": str(int(retry_after))})

    # -- inspection ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "service": self.name,
            "requests_by_status": dict(self.requests_by_status),
            "max_requests_in_window": {n: lim.stats()["max_in_window"] for n, lim in self.limiters.items()},
            "windows_over_limit": sum(lim.windows_over_limit for lim in self.limiters.values()),
            "attempted_max_in_window": {
                n: lim.stats()["attempted_max_in_window"] for n, lim in self.limiters.items()
            },
            "attempted_windows_over_limit": sum(
                lim.attempted_windows_over_limit for lim in self.limiters.values()
            ),
            # real limit rejections only; injected 429 faults are in injected_429s
            "rate_limited_429s": sum(lim.rejected for lim in self.limiters.values()) + self.extra_429s,
            "injected_429s": self.faults.injected["429"],
            "max_concurrent_requests": self.max_concurrent,
            "requests_in_flight": self.inflight,
            "processed_after_disconnect": self.processed_after_disconnect,
            "held_answers_delivered": self.held_answers_delivered,
            "held_usable_answers_delivered": self.held_usable_answers_delivered,
            "limits": {n: lim.stats() for n, lim in self.limiters.items()},
            "faults_injected": dict(self.faults.injected),
            "send_to_arrival_ms": delay_summary(self.send_to_arrival, self._sends_per_window()),
            **self.extra_stats(),
        }

    def extra_stats(self) -> dict:
        return {}

    def _sends_per_window(self) -> int | None:
        """The request-count limit that send-to-arrival ``drop`` is measured against (the first limiter)."""
        for limiter in self.limiters.values():
            return int(limiter.rate)
        return None

    def reset(self) -> None:
        self.reset_counters()
        self.reset_state()

    def reset_state(self) -> None:
        return None

    def config(self) -> dict:
        return {
            **self.faults.config(),
            "limits": {n: {"rate": lim.rate, "window": lim.window} for n, lim in self.limiters.items()},
            **self.readings.config(),
            **self.extra_config(),
        }

    def extra_config(self) -> dict:
        return {}

    def configure(self, values: dict) -> None:
        self.faults.configure(values)
        self.readings.configure(values)
        for name, spec in (values.get("limits") or {}).items():
            if name not in self.limiters:
                raise ValueError(f"unknown limit {name!r}; known: {sorted(self.limiters)}")
            limiter = self.limiters[name]
            limiter.rate = float(spec.get("rate", limiter.rate))
            limiter.window = float(spec.get("window", limiter.window))
        self.configure_extra(values)

    def configure_extra(self, values: dict) -> None:
        return None
