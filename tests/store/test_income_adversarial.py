"""Adversarial checks of the income state (creator_sync.store.income): two runs computing one creator's
totals at once, amounts at the edges, items corrected between reads, and a property over corrections."""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.income import attribute_values, cleared
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.store import StateStore
from creator_sync.store import income as income_store
from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem, totals_of

from .stores import dialect_store
from .test_income import _fresh_store

DAY_US = 86_400 * 1_000_000
WINDOW = 30 * DAY_US
END = 20_000 * DAY_US


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    with dialect_store(request.param, tmp_path, "cs_income_adv", "the income state on PostgreSQL") as s:
        yield s


def tx(item_id, at_us=END - DAY_US, micros=10_000_000, currency="USD", user="u1", status="COMPLETED"):
    return IncomeItem(
        user, TRANSACTION, item_id, "a1", micros, currency, at_us, status, status == "COMPLETED"
    )


def totals(store, items, users=("u1",), as_of=END) -> dict:
    return store.income_totals(items, list(users), as_of_us=as_of, window_us=WINDOW)


def _two_runs_at_once(store, monkeypatch, line_up_s: float = 1.5) -> dict:
    """Run 1 keeps t1 and run 2 keeps t2 for the same creator at the same moment, lined up so that neither
    stores its totals before both have summed the items (each while the other's item may be uncommitted);
    then the next run, reading no new income for the creator, returns the kept totals (what it sends).
    ``line_up_s``: how long one run waits for the other before it stores (short with the lock, which holds
    the other run back before it sums; long without it, so a loaded machine still lines them up)."""
    barrier = threading.Barrier(2, timeout=line_up_s)
    original = income_store.Income._store_totals

    def both_summed_before_either_stores(self, conn, rows):
        # a broken barrier: the other run waits for this one (serialized), nothing to line up
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return original(self, conn, rows)

    monkeypatch.setattr(income_store.Income, "_store_totals", both_summed_before_either_stores)
    errors = []

    def run(item):
        try:
            totals(store, [item])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(tx(f"t{i}"),)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    monkeypatch.setattr(income_store.Income, "_store_totals", original)
    return totals(store, [])["u1"]


def test_two_runs_keeping_items_of_one_creator_at_once_leave_the_totals_of_both(store, monkeypatch):
    kept = _two_runs_at_once(store, monkeypatch)
    assert kept["lifetime"] == {"USD": 20_000_000}, kept


def test_without_the_income_lock_two_runs_at_once_keep_totals_that_miss_an_item(tmp_path, monkeypatch):
    """The guard off (PostgreSQL, no advisory lock): each run sums without the other's uncommitted item and
    the last to commit keeps totals with one item only."""
    monkeypatch.setattr(income_store, "serialize", lambda conn: None)
    with dialect_store("postgresql", tmp_path, "cs_income_adv_off", "the income lock") as s:
        assert _two_runs_at_once(s, monkeypatch, line_up_s=60)["lifetime"] == {"USD": 10_000_000}


def test_huge_amounts_do_not_stop_the_run(store):
    """Two items near the largest amount the transform accepts (< 9e12 units each): their sum passes the
    64-bit integer range of micro-units. The totals are still computed (SQLite's sum() raises 'integer
    overflow' on that, which would fail every retry of the run)."""
    big = 8_999_999_999_999 * 1_000_000
    found = totals(store, [tx("t1", micros=big), tx("t2", micros=big)])
    assert found["u1"]["lifetime"]["USD"] == pytest.approx(2 * big, rel=1e-9)


def test_an_item_corrected_to_another_currency_leaves_no_stale_figure(store):
    """t1 is read as 10 USD, then corrected to 10 EUR: the creator has no USD income any more. The figures
    sent must set the USD ones to 0, else Insider keeps earnings_lifetime_usd = 10 for ever (an upsert that
    leaves an attribute out does not change it)."""
    totals(store, [tx("t1")])
    after = attribute_values(totals(store, [tx("t1", currency="EUR")])["u1"])
    assert after["earnings_lifetime_eur"] == 10
    assert after.get("earnings_lifetime_usd") == 0 and after.get("earnings_30d_usd") == 0, after


def test_a_reversed_transaction_sets_the_figures_to_zero(store):
    """The creator's only transaction goes COMPLETED -> REVERSED: the figures sent are 0, not left out."""
    totals(store, [tx("t1")])
    after = attribute_values(totals(store, [tx("t1", status="REVERSED")])["u1"])
    assert after == {"earnings_lifetime_usd": 0, "earnings_30d_usd": 0}, after


PAID_P1 = IncomeItem("u1", PAYOUT, "p1", "a1", 50_000_000, "USD", END - DAY_US, "PAID", True)
FAILED_P1 = IncomeItem("u1", PAYOUT, "p1", "a1", 50_000_000, "USD", END - DAY_US, "FAILED", False)
LAST_PAYOUT = ["last_payout_at", "last_payout_amount", "last_payout_currency"]


def _paid_then_failed(store) -> dict:
    """p1 read PAID (its figures sent), then read again FAILED: the creator has no counted payout left."""
    assert attribute_values(totals(store, [PAID_P1])["u1"])["last_payout_amount"] == 50
    return totals(store, [FAILED_P1])


def test_a_payout_that_failed_after_it_was_paid_is_not_the_last_payout_any_more(store):
    """The upsert leaves last_payout_* out (there is no value to send) and the clears list them for Insider's
    Delete User Attribute API; a run that reads nothing new lists them again (a level: a delete that did not
    land is sent again), until a counted payout comes back."""
    mapping = load_mapping()
    after = _paid_then_failed(store)
    assert not set(LAST_PAYOUT) & set(attribute_values(after["u1"]))
    assert cleared(after, mapping) == {"u1": LAST_PAYOUT}
    assert cleared(totals(store, []), mapping) == {"u1": LAST_PAYOUT}
    back = totals(store, [PAID_P1])
    assert cleared(back, mapping) == {} and attribute_values(back["u1"])["last_payout_amount"] == 50


def test_without_the_earlier_payout_check_insider_keeps_the_failed_payout(store, monkeypatch):
    """The guard off (`had_payout` always false): nothing says the payout is gone, so nothing is cleared and
    nothing sent: Insider keeps the failed payout as the creator's last one."""
    monkeypatch.setattr(income_store, "had_payout", lambda previous: False)
    after = _paid_then_failed(store)
    assert cleared(after, load_mapping()) == {}
    assert not set(LAST_PAYOUT) & set(attribute_values(after["u1"]))


def test_the_same_transaction_id_under_two_creators_counts_for_each(store):
    """InsightIQ ids are per item: the same id under two creators is two items (one per creator)."""
    found = totals(store, [tx("t1", user="u1"), tx("t1", user="u2")], users=("u1", "u2"))
    assert found["u1"]["lifetime"] == found["u2"]["lifetime"] == {"USD": 10_000_000}


def test_the_reference_and_the_store_agree_on_negative_and_same_time_items(store):
    items = [tx("t1", micros=-3_500_001), tx("t2", micros=5_000_001), tx("t3", at_us=END - WINDOW)]
    items += [
        IncomeItem("u1", PAYOUT, "pa", "a1", 1, "USD", END - DAY_US, "PAID", True),
        IncomeItem("u1", PAYOUT, "pb", "a1", 2, "USD", END - DAY_US, "PAID", True),  # same time: id decides
    ]
    found = totals(store, items)["u1"]
    assert found == totals_of(items, END, WINDOW)
    assert found["payout"]["item_id"] == "pb"


# --- the property over corrections ------------------------------------------------------------------------
def _version(kind, n, day, micros, currency, status) -> IncomeItem:
    counted = status in ("COMPLETED", "PAID")
    return IncomeItem(
        "u1", kind, f"{kind[0]}{n}", "a1", micros, currency, END - day * DAY_US, status, counted
    )


versions = st.builds(
    _version,
    kind=st.sampled_from([TRANSACTION, TRANSACTION, PAYOUT]),
    n=st.integers(0, 4),  # few ids: the same item is read again, often changed
    day=st.integers(0, 45),
    micros=st.one_of(st.integers(-(10**9), 10**12), st.sampled_from([0, 8_999_999_999_999 * 10**6])),
    currency=st.sampled_from(["USD", "EUR"]),
    status=st.sampled_from(["COMPLETED", "PAID", "REVERSED", "FAILED", "PENDING"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reads=st.lists(st.lists(versions, min_size=0, max_size=4), min_size=1, max_size=5))
def test_the_kept_totals_are_those_of_the_last_read_of_each_item(reads):
    """Runs read items that change between reads (amount, currency, time, status): the totals are those of
    each item's last read; a currency no counted item has any more is 0, never a stale figure; and the last
    payout is marked gone exactly when no counted payout is left but an earlier run's totals had one."""
    last: dict = {}
    paid_before = False  # some run's totals had a last payout (sent to Insider)
    with tempfile.TemporaryDirectory() as tmp:
        store = _fresh_store(tmp)
        for run in reads:
            found = totals(store, run)
            for item in run:
                last[(item.kind, item.item_id)] = item
            got = found.get("u1", {})
            assert bool(got.get("payout_gone")) == (paid_before and got.get("payout") is None), got
            paid_before = paid_before or bool(got.get("payout"))
    expected = totals_of(last.values(), END, WINDOW)
    if not last:
        return
    got = found["u1"]
    assert set(expected["lifetime"]) <= set(got["lifetime"])
    for currency, micros in got["lifetime"].items():
        assert micros == expected["lifetime"].get(currency, 0)
        assert got["recent"][currency] == expected["recent"].get(currency, 0)
    assert got["payout"] == expected["payout"]


def test_a_creator_purged_after_the_transform_checked_the_skip_list_gets_no_income_back(store):
    """The transform drops offboarded creators when it builds a bucket; a creator put on the skip list and
    purged between that check and the bucket's income write must not get their items back."""
    _purge_then_write(store)
    assert store.income_items_of(["u1"]) == []


def test_without_the_skip_list_check_the_purged_creator_gets_income_back(store, monkeypatch):
    monkeypatch.setattr(income_store, "_not_offboarded", lambda conn, items: items)
    _purge_then_write(store)
    assert [i.item_id for i in store.income_items_of(["u1"])] == ["t2"]


def _purge_then_write(store) -> None:
    from creator_sync.store.offboarding import OffboardingState

    totals(store, [tx("t1")])
    offboarding = OffboardingState(store)
    offboarding.mark_offboarded("u1", "left")
    offboarding.purge("u1")
    totals(store, [tx("t2")])  # the run's bucket, built before u1 went on the list
