"""The income state (creator_sync.store.income): items kept once per (creator, kind, id), totals computed
from them per currency, the 30-day window's boundary and decay, the newest payout, on SQLite and PostgreSQL;
and a property: whatever runs read in whatever order and overlap, the totals are those of the distinct items.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.store import StateStore
from creator_sync.store import income as income_store
from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem, totals_of

from .stores import dialect_store

DAY_US = 86_400 * 1_000_000
WINDOW = 30 * DAY_US
END = 20_000 * DAY_US  # 2024-10-04: a run's interval end, as epoch microseconds


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    with dialect_store(request.param, tmp_path, "cs_income", "the income state on PostgreSQL") as s:
        yield s


def tx(item_id: str, at_us: int, amount: float = 10.0, currency: str = "USD", user: str = "u1", **kw):
    fields = {"account_id": "a1", "status": "COMPLETED", "counted": True, **kw}
    return IncomeItem(user, TRANSACTION, item_id, amount_micros=round(amount * 1e6), currency=currency,
                      at_us=at_us, **fields)  # fmt: skip


def payout(item_id: str, at_us: int, amount: float = 50.0, currency: str = "USD", user: str = "u1"):
    return IncomeItem(user, PAYOUT, item_id, "a1", round(amount * 1e6), currency, at_us, "PAID", True)


def totals(store, items, users=("u1",), as_of=END, keep=True) -> dict:
    return store.income_totals(items, list(users), as_of_us=as_of, window_us=WINDOW, keep=keep)


def test_a_transaction_exactly_30_days_old_counts_one_a_microsecond_older_does_not(store):
    found = totals(store, [tx("t1", END - WINDOW, 5), tx("t2", END - WINDOW - 1, 7)])["u1"]
    assert found["recent"] == {"USD": 5_000_000}
    assert found["lifetime"] == {"USD": 12_000_000}


def test_the_30_day_figure_falls_with_time_without_a_new_transaction(store):
    totals(store, [tx("t1", END - DAY_US, 5)])
    assert totals(store, [], as_of=END + 29 * DAY_US - 1)["u1"]["recent"] == {"USD": 5_000_000}
    later = totals(store, [], as_of=END + 29 * DAY_US + 1)["u1"]  # t1 is now 30 days + 1 us old
    assert later["recent"] == {"USD": 0}  # 0, not left out: Insider's value falls too
    assert later["lifetime"] == {"USD": 5_000_000}


def test_without_the_decay_check_the_30_day_figure_would_stay(store, monkeypatch):
    """The guard switched off (no creator is due for a recompute by time): the figure stays stale."""
    totals(store, [tx("t1", END - DAY_US, 5)])
    monkeypatch.setattr(StateStore, "_decayed", staticmethod(lambda found, as_of: set()))
    stale = totals(store, [], as_of=END + 40 * DAY_US)["u1"]
    assert stale["recent"] == {"USD": 5_000_000}


def test_same_second_transactions_are_two_items(store):
    found = totals(store, [tx("t1", END - 5, 1.25), tx("t2", END - 5, 2.5)])["u1"]
    assert found["recent"] == {"USD": 3_750_000}


def test_currencies_are_never_added_together(store):
    found = totals(store, [tx("t1", END - 5, 10), tx("t2", END - 6, 20, "EUR"), tx("t3", END - 7, 1, "EUR")])
    assert found["u1"]["lifetime"] == {"EUR": 21_000_000, "USD": 10_000_000}


def test_the_same_transaction_read_by_two_runs_counts_once(store):
    totals(store, [tx("t1", END - DAY_US, 10)])  # the hourly run
    again = totals(store, [tx("t1", END - DAY_US, 10), tx("t2", END - 2 * DAY_US, 1)])  # the weekly sweep
    assert again["u1"]["lifetime"] == {"USD": 11_000_000}
    updated = totals(store, [tx("t1", END - DAY_US, 12)])  # TRANSACTIONS.UPDATED: InsightIQ's value wins
    assert updated["u1"]["lifetime"] == {"USD": 13_000_000}


def test_a_transaction_counts_once_its_status_does(store):
    totals(store, [tx("t1", END - DAY_US, 10, status="PENDING", counted=False)])
    assert totals(store, [])["u1"]["lifetime"] == {}
    done = totals(store, [tx("t1", END - DAY_US, 10)])
    assert done["u1"]["lifetime"] == {"USD": 10_000_000}


def test_an_older_payout_read_late_never_replaces_the_newest(store):
    first = totals(store, [payout("p2", END - DAY_US, 80)])["u1"]["payout"]
    late = totals(store, [payout("p1", END - 9 * DAY_US, 30, "EUR")])["u1"]["payout"]  # the sweep, later
    newest = {"at_us": END - DAY_US, "amount_micros": 80_000_000, "currency": "USD", "item_id": "p2"}
    assert late == first == newest
    newer = totals(store, [payout("p3", END - 5, 9)])["u1"]["payout"]
    assert newer["item_id"] == "p3"


def test_a_backfill_does_not_move_the_window_back(store):
    totals(store, [tx("t1", END - 40 * DAY_US, 3)])  # an hourly run: t1 is older than the window
    old = totals(store, [tx("t2", END - 45 * DAY_US, 4)], as_of=END - 35 * DAY_US)  # a backfill's interval
    assert old["u1"]["recent"] == {"USD": 0}  # as of END, not of the backfill's end
    assert old["u1"]["as_of_us"] == END


def test_a_dry_run_keeps_nothing(store):
    assert totals(store, [tx("t1", END - 5, 2)], keep=False)["u1"]["lifetime"] == {"USD": 2_000_000}
    assert totals(store, []) == {}
    assert store.income_items_of(["u1"]) == []


def test_creators_are_apart_and_those_without_income_have_no_totals(store):
    found = totals(store, [tx("t1", END - 5, 2), tx("t1", END - 5, 3, user="u2")], users=("u1", "u2", "u3"))
    assert found["u1"]["lifetime"] == {"USD": 2_000_000} and found["u2"]["lifetime"] == {"USD": 3_000_000}
    assert "u3" not in found


# --- the property -------------------------------------------------------------------------------------
def _item(kind: str, n: int, user: str, day: int, cents: int, currency: str, second: int) -> IncomeItem:
    at = END - day * DAY_US - second * 1_000_000
    status, counted = ("PAID", True) if kind == PAYOUT else ("COMPLETED", True)
    return IncomeItem(user, kind, f"{kind[0]}{n}", "a1", cents * 10_000, currency, at, status, counted)


items_strategy = st.lists(
    st.builds(
        _item,
        kind=st.sampled_from([TRANSACTION, TRANSACTION, PAYOUT]),
        n=st.integers(0, 30),
        user=st.sampled_from(["u1", "u2"]),
        day=st.integers(0, 60),
        cents=st.integers(-5_000, 500_000),
        currency=st.sampled_from(["USD", "EUR", "TRY"]),
        second=st.sampled_from([0, 0, 1]),  # same-second items
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda i: (i.user_key, i.kind, i.item_id),  # one truth per item
)


def _runs(data, items: list[IncomeItem]) -> list[tuple[list[IncomeItem], int]]:
    """Runs, each reading a subset of the items (overlapping, with repeats, in any order) at an interval
    end that moves forward or back (a backfill)."""
    runs = []
    for _ in range(data.draw(st.integers(1, 5), label="runs")):
        picked = data.draw(st.lists(st.sampled_from(items), max_size=2 * len(items)), label="read")
        runs.append((picked, END + data.draw(st.integers(-40, 40), label="day") * DAY_US))
    everything = data.draw(st.permutations(items), label="the last run reads all")
    runs.append((list(everything), END + data.draw(st.integers(-40, 40), label="day") * DAY_US))
    return runs


def _replay(store, runs) -> tuple[dict, int]:
    """The runs, then the next hourly run (at the newest interval end, reading no income): the figures it
    sends, without `as_of_us` (a run that changed nothing leaves the moment its totals were computed at)."""
    newest = max(as_of for _, as_of in runs)
    for read, as_of in [*runs, ([], newest)]:
        seen = totals(store, read, users=("u1", "u2"), as_of=as_of)
    return {user: {k: v for k, v in t.items() if k != "as_of_us"} for user, t in seen.items()}, newest


def _direct(items: list[IncomeItem], as_of: int) -> dict:
    out = {}
    for user in ("u1", "u2"):
        mine = [i for i in items if i.user_key == user]
        if mine:
            out[user] = {k: v for k, v in totals_of(mine, as_of, WINDOW).items() if k != "as_of_us"}
    return out


_TEMPLATE: list[Path] = []


def _fresh_store(tmp: str) -> StateStore:
    """An empty, migrated SQLite state (a copy of one migrated once: the migrations take most of a second)."""
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp()) / "template.db"
        StateStore(f"sqlite:///{template}").engine.dispose()
        _TEMPLATE.append(template)
    shutil.copy(_TEMPLATE[0], Path(tmp) / "state.db")
    return StateStore(f"sqlite:///{Path(tmp) / 'state.db'}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=items_strategy, data=st.data())
def test_the_totals_are_those_of_the_distinct_items_whatever_the_runs_read(items, data):
    runs = _runs(data, items)
    with tempfile.TemporaryDirectory() as tmp:
        found, as_of = _replay(_fresh_store(tmp), runs)
    assert found == _direct(items, as_of)
    for user, t in found.items():  # and the last payout is the newest one
        payouts = [i for i in items if i.user_key == user and i.kind == PAYOUT]
        if payouts:
            assert t["payout"]["at_us"] == max(p.at_us for p in payouts)


def test_without_the_item_key_the_property_fails(monkeypatch, tmp_path):
    """The idempotency guard switched off (each read is a new row, as a counter summing what runs read would
    be): the hourly run and the sweep reading the same transaction count it twice."""
    counter = itertools.count()
    monkeypatch.setattr(income_store, "row_id", lambda item: f"{item.item_id}#{next(counter)}")
    items = [_item(TRANSACTION, 1, "u1", 1, 1000, "USD", 0), _item(TRANSACTION, 2, "u1", 3, 500, "USD", 0)]
    runs = [([items[0]], END), (list(reversed(items)), END)]
    found, as_of = _replay(_fresh_store(str(tmp_path)), runs)
    assert found != _direct(items, as_of)
    assert found["u1"]["lifetime"] == {"USD": 25_000_000}  # 10 counted twice + 5
