"""Fault injection: one uniform draw per (non-/_sandbox) request from a seeded RNG, so a given seed and
request sequence always produces the same faults.

Kinds decided BEFORE the endpoint runs (the request is not processed):
  ``5xx`` (500/502/503/504), ``429`` (injected, counted apart from real limit 429s), ``slow`` (sleep
  ``slow_seconds`` first, then process normally), ``drop`` (close the connection, no answer), ``malformed``
  (a 200 with a truncated body, nothing processed).
Kinds decided AFTER the endpoint ran (the request IS processed and its answer is lost; for a write such as
the Insider upsert this is the case a client must not re-send blindly; for a read it is a lost answer):
  ``drop_after`` (close the connection instead of answering), ``timeout_after`` (hold the answer for
  ``slow_seconds``, past the client's read timeout), ``truncated_after`` (the real status with the body cut
  in half and a matching Content-Length).
``latency_seconds`` (not a fault, no draw) delays every request, e.g. so a test can kill a task mid-batch
without changing the fault mix.
"""

from __future__ import annotations

import random

BEFORE_KINDS = ("5xx", "429", "slow", "drop", "malformed")
AFTER_KINDS = ("drop_after", "timeout_after", "truncated_after")
KINDS = BEFORE_KINDS + AFTER_KINDS


class FaultInjector:
    def __init__(
        self,
        seed: int,
        service: str,
        rates: dict[str, float] | None = None,
        slow_seconds: float = 5.0,
        latency_seconds: float = 0.0,
    ):
        self.seed = seed
        self.service = service
        self.rates = {kind: 0.0 for kind in KINDS}
        unknown = set(rates or {}) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; known: {list(KINDS)}")
        self.rates.update(rates or {})
        self.slow_seconds = float(slow_seconds)
        self.latency_seconds = float(latency_seconds)  # added to every request, no draw (not a fault)
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(f"{self.seed}:{self.service}:faults")
        self.injected = {kind: 0 for kind in KINDS}

    @property
    def active(self) -> bool:
        return any(rate > 0 for rate in self.rates.values())

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        if not self.active:
            return None
        u = self._rng.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.rates[kind]
            if u < edge:
                self.injected[kind] += 1
                return kind
        return None

    def status_5xx(self) -> int:
        return self._rng.choice((500, 502, 503, 504))

    def config(self) -> dict:
        return {
            **{f"fault_{k}": v for k, v in self.rates.items()},
            "slow_seconds": self.slow_seconds,
            "latency_seconds": self.latency_seconds,
        }

    def configure(self, values: dict) -> None:
        for kind in KINDS:
            if f"fault_{kind}" in values:
                self.rates[kind] = float(values[f"fault_{kind}"])
        if "slow_seconds" in values:
            self.slow_seconds = float(values["slow_seconds"])
        if "latency_seconds" in values:
            self.latency_seconds = float(values["latency_seconds"])
