"""The pool descriptions in resources/pools.json (shown in the Airflow UI's pool list) state the per-slot
budget the code really spends (creator_sync.limits.RateLimit.per_slot_limit)."""

from __future__ import annotations

import json

import pytest

from creator_sync.limits import rate_limit
from creator_sync.settings import pools_file

POOLS = json.loads(pools_file().read_text())


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_description_states_the_per_slot_budget_of_the_code(pool):
    limit = rate_limit(pool)
    description = POOLS[pool]["description"]
    assert f"{limit.slots} slot" in description, description
    if limit.slots == 1:
        return
    per_slot = limit.per_slot_limit
    figure = f"{per_slot:,.0f}" if per_slot == int(per_slot) else f"{per_slot:,.1f}"
    assert f"= {figure} " in description, f"{pool}: the code spends {figure} per slot; {description}"
