"""The pools and connections files are the single source for `make demo`, tests and compose."""

from __future__ import annotations

import json
from pathlib import Path

from creator_sync.settings import pools_file

REPO = Path(__file__).resolve().parents[1]


def test_pools_file_has_the_vendor_pools_with_their_limits():
    pools = json.loads(pools_file().read_text())
    assert set(pools) == {
        "insightiq_api",
        "insider_upsert",
        "insider_profile",
        "insider_web_push",
        "insider_data_governance",
    }
    for name, pool in pools.items():
        assert isinstance(pool["slots"], int) and pool["slots"] >= 1, name
        assert pool["description"], name
        limit = pool["rate_limit"]
        assert limit["requests"] > 0 and limit["per_seconds"] > 0 and limit["source"], name
        # each slot's share of the budget is a whole positive rate
        assert limit["requests"] / pool["slots"] > 0


def test_connections_file_has_the_three_default_connections():
    conns = json.loads((REPO / "config" / "connections.json").read_text())
    assert set(conns) == {"insightiq_default", "insider_default", "insider_web_push_default"}
    assert conns["insider_default"]["login"] == conns["insider_default"]["login"].lower()
    for conn in conns.values():
        assert conn["host"].startswith("http://127.0.0.1:")
