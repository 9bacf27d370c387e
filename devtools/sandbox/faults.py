"""Fault injection: one uniform draw per (non-/_sandbox) request from a seeded RNG, so a given seed and
request sequence always produces the same faults."""

from __future__ import annotations

import random

KINDS = ("5xx", "429", "slow", "drop", "malformed")


class FaultInjector:
    def __init__(self, seed: int, service: str, rates: dict[str, float] | None = None, slow_seconds=5.0):
        self.seed = seed
        self.service = service
        self.rates = {kind: 0.0 for kind in KINDS}
        self.rates.update(rates or {})
        self.slow_seconds = float(slow_seconds)
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
        return self._rng.choice((500, 502, 503))

    def config(self) -> dict:
        return {**{f"fault_{k}": v for k, v in self.rates.items()}, "slow_seconds": self.slow_seconds}

    def configure(self, values: dict) -> None:
        for kind in KINDS:
            if f"fault_{kind}" in values:
                self.rates[kind] = float(values[f"fault_{kind}"])
        if "slow_seconds" in values:
            self.slow_seconds = float(values["slow_seconds"])
