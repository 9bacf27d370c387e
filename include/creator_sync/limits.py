"""Rate limits, windows and pool slots, read from the pools file (``creator_sync/resources/pools.json``,
the one place they live; ``creator_sync.settings`` says where it is)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from creator_sync.settings import CONFIG_DIR_ENV, pools_file

# Pool names, as keys of the pools file (checked against the file by load_pools / rate_limit).
INSIGHTIQ_POOL = "insightiq_api"
INSIDER_UPSERT_POOL = "insider_upsert"
INSIDER_PROFILE_POOL = "insider_profile"
INSIDER_WEB_PUSH_POOL = "insider_web_push"
INSIDER_GOVERNANCE_POOL = "insider_data_governance"


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_pools() -> dict[str, Any]:
    """The parsed pools file (cached until the file changes)."""
    path = pools_file()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise FileNotFoundError(
            f"creator-sync pools file not found at {path}; set {CONFIG_DIR_ENV} to the config directory"
        ) from None
    return _load(str(path), mtime)


@dataclass(frozen=True)
class RateLimit:
    """A vendor budget: at most ``limit`` units (requests or quota units) per ``window`` seconds."""

    pool: str
    limit: float
    window: float
    slots: int
    unit: str = "requests"

    @property
    def per_slot_limit(self) -> float:
        """What one pool slot may spend without shared state: limit / slots.

        Counted in whole requests per window (floor), because a window holds whole requests: with
        10 req/s over 4 slots a client may send 2 per second (4 x 2 = 8 <= 10 whatever the phase
        between clients); 3 each could put 12 into one vendor window. Quota units stay fractional.
        """
        return self.share(1)

    def share(self, held: int) -> float:
        """What a client holding ``held`` of the pool's slots may spend without shared state:
        limit x held / slots (whole requests per window, as `per_slot_limit`). The pool lets the tasks
        running at once hold at most ``slots`` slots together, so their shares add up to at most the limit
        (floors of parts never exceed the floor of the whole); a task holding every slot spends it all."""
        if not 1 <= held <= self.slots:
            raise ValueError(f"pool {self.pool} has {self.slots} slots; a client cannot hold {held}")
        share = self.limit * held / self.slots
        if self.unit == "requests":
            return float(max(1, math.floor(share)))
        return share


def rate_limit(pool: str) -> RateLimit:
    pools = load_pools()
    if pool not in pools:
        raise KeyError(f"pool {pool!r} is not defined in {pools_file()} (have: {sorted(pools)})")
    entry = pools[pool]
    spec = entry["rate_limit"]
    return RateLimit(
        pool=pool,
        limit=float(spec["requests"]),
        window=float(spec["per_seconds"]),
        slots=int(entry["slots"]),
        unit=str(spec.get("unit", "requests")),
    )


def pool_slots(pool: str) -> int:
    return rate_limit(pool).slots
