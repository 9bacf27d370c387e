"""The two state reads and writes the clear pass's last-payout guard uses (creator_sync.pipeline.clear), on
SQLite and PostgreSQL: ``stored_income_totals`` reads the totals as stored (a creator's `payout_gone`
included), ``forget_attribute_hashes`` drops the acknowledged hash of the named users only."""

from __future__ import annotations

import pytest

from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem

from .stores import dialect_store

DAY_US = 86_400 * 1_000_000
WINDOW = 30 * DAY_US


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path):
    with dialect_store(request.param, tmp_path, "creator_sync_payout_clear", "payout clear") as store:
        yield store


def _item(kind: str, item_id: str, status: str, at_us: int) -> IncomeItem:
    return IncomeItem(
        "u1", kind, item_id, "a1", 5_000_000, "USD", at_us, status, status in ("PAID", "COMPLETED")
    )


def test_stored_totals_are_read_as_they_are(state):
    state.income_totals([_item(PAYOUT, "p1", "PAID", DAY_US), _item(TRANSACTION, "t1", "COMPLETED", DAY_US)],
                        ["u1"], as_of_us=2 * DAY_US, window_us=WINDOW)  # fmt: skip
    state.income_totals(
        [_item(PAYOUT, "p1", "FAILED", DAY_US)], ["u1"], as_of_us=2 * DAY_US, window_us=WINDOW
    )
    stored = state.stored_income_totals(["u1", "nobody"])
    assert set(stored) == {"u1"}
    assert stored["u1"]["payout_gone"] is True and stored["u1"]["recent"] == {"USD": 5_000_000}
    before = state.stored_income_totals(["u1"])
    assert before == state.stored_income_totals(["u1"])  # a read: nothing recomputed or stored


def test_forgetting_drops_only_the_named_users_hashes(state):
    hashes = [("u1", "h1"), ("u2", "h2")]
    state.record_batch(run_id="r", batch_key="b", events=[], hashes=hashes, failures=[])
    assert state.forget_attribute_hashes(["u1", "nobody"]) == 1
    assert {k: v[0] for k, v in state.attribute_hashes(["u1", "u2"]).items()} == {"u2": "h2"}
