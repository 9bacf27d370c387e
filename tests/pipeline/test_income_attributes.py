"""The income attributes through the transform (creator_sync.pipeline.income with a SQLite state): per
currency, from the transactions and payouts of every run kept once; an invalid item is a dead letter, not a
silent drop; a dry run keeps nothing; without income attributes in the mapping nothing is kept or sent. And
the audience credibility, where the audience record has it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from creator_sync.pipeline.income import IncomeState, base_name
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import StateStore

from .factories import END, profile, write_resource
from .test_attributes import run, two_platform_fetch, with_changes


def tx(tid: str, at: str, amount, currency="USD", status="COMPLETED", user="u1") -> dict:
    return {"id": tid, "user": {"id": user}, "account": {"id": "a1"}, "work_platform": {"name": "YouTube"},
            "amount": amount, "currency": currency, "type": "AD_REVENUE", "transaction_at": at,
            "status": status}  # fmt: skip


def paid(pid: str, at: str, amount, currency="USD", status="PAID") -> dict:
    return {"id": pid, "user": {"id": "u1"}, "account": {"id": "a1"}, "work_platform": {"name": "YouTube"},
            "amount": amount, "currency": currency, "status": status, "payout_at": at}  # fmt: skip


@pytest.fixture
def state(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def fetch(root, transactions, payouts=()) -> dict:
    users = [{"id": "u1", "external_id": "e1"}]
    profiles = [profile("u1", "a1", "YouTube", "2024-04-01T00:00:00Z", first_name="Ada",
                        emails=[{"type": "WORK", "email_id": "ada@example.com"}])]  # fmt: skip
    out = {
        "users": [write_resource(root / "users.parquet", users)],
        "profiles": [write_resource(root / "profiles.parquet", profiles)],
        "accounts": [],
        "transactions": [write_resource(root / "transactions.parquet", list(transactions))],
    }
    if payouts:
        out["payouts"] = [write_resource(root / "payouts.parquet", list(payouts))]
    return out


def transform(tmp_path, name, inputs, state, *, keep=True, mapping=None, end=END):
    result = transform_run(
        inputs, start=end - timedelta(days=1), end=end, out_dir=tmp_path / name, mapping=mapping,
        income_state=IncomeState(state, keep=keep),
    )  # fmt: skip
    users = [json.loads(x) for x in result.users_path.read_text().splitlines()]
    malformed = [json.loads(x) for x in result.malformed_path.read_text().splitlines()]
    return {u["identifiers"]["uuid"]: u for u in users}, malformed


def income_of(user: dict) -> dict:
    return {k: v for k, v in user["attributes"].get("custom", {}).items() if base_name(k)}


def test_two_runs_reading_one_transaction_count_it_once_and_currencies_stay_apart(tmp_path, state):
    first, _ = transform(
        tmp_path, "h", fetch(tmp_path / "a", [tx("t1", "2024-05-01T10:00:00Z", 10.5)]), state
    )
    assert income_of(first["u1"]) == {"earnings_30d_usd": 10.5, "earnings_lifetime_usd": 10.5}
    sweep = [tx("t1", "2024-05-01T10:00:00Z", 10.5), tx("t0", "2024-03-01T00:00:00Z", 4, "eur")]
    second, _ = transform(tmp_path, "s", fetch(tmp_path / "b", sweep), state)
    assert income_of(second["u1"]) == {
        "earnings_30d_usd": 10.5,
        "earnings_lifetime_usd": 10.5,  # t1 once
        "earnings_30d_eur": 0,  # t0 is two months old
        "earnings_lifetime_eur": 4,
    }


def test_the_last_payout_is_the_newest_and_a_pending_one_does_not_count(tmp_path, state):
    payouts = [
        paid("p1", "2024-04-20T00:00:00Z", 70),
        paid("p2", "2024-04-28T00:00:00Z", 9, status="PENDING"),
    ]
    users, _ = transform(tmp_path, "r", fetch(tmp_path / "a", [], payouts), state)
    assert income_of(users["u1"]) == {
        "last_payout_at": "2024-04-20T00:00:00Z",
        "last_payout_amount": 70,
        "last_payout_currency": "USD",
    }
    late = [paid("p0", "2024-01-02T00:00:00Z", 500, "EUR")]  # an older one, read later (the sweep)
    users, _ = transform(tmp_path, "s", fetch(tmp_path / "b", [], late), state)
    assert income_of(users["u1"])["last_payout_at"] == "2024-04-20T00:00:00Z"


def test_a_payout_read_failed_after_it_was_paid_is_deleted_at_insider_not_sent_again(tmp_path, state):
    """p1 PAID, then read FAILED: the second run's upsert sets no last_payout_* and its clears.jsonl (the
    Delete User Attribute requests, creator_sync.pipeline.clear) lists them for the creator."""
    transform(tmp_path, "r", fetch(tmp_path / "a", [], [paid("p1", "2024-04-20T00:00:00Z", 70)]), state)
    failed = fetch(tmp_path / "b", [], [paid("p1", "2024-04-20T00:00:00Z", 70, status="FAILED")])
    users, _ = transform(tmp_path, "s", failed, state)
    assert income_of(users["u1"]) == {}
    clears = [json.loads(x) for x in (tmp_path / "s" / "clears.jsonl").read_text().splitlines()]
    assert clears == [
        {
            "identifiers": {"uuid": "u1"},
            "custom": {"whole": ["last_payout_amount", "last_payout_at", "last_payout_currency"]},
        }
    ]


def test_an_item_without_a_usable_amount_or_currency_is_a_dead_letter(tmp_path, state):
    items = [tx("t1", "2024-05-01T10:00:00Z", 3), tx("t2", "2024-05-01T11:00:00Z", None),
             tx("t3", "2024-05-01T12:00:00Z", 5, currency="dollars")]  # fmt: skip
    users, malformed = transform(tmp_path, "r", fetch(tmp_path / "a", items), state)
    assert income_of(users["u1"]) == {"earnings_30d_usd": 3, "earnings_lifetime_usd": 3}
    letters = {m["payload"]["id"]: m for m in malformed}
    assert set(letters) == {"t2", "t3"}
    assert {m["reason"] for m in malformed} == {"invalid_income_item"}
    assert "amount" in letters["t2"]["detail"] and "ISO 4217" in letters["t3"]["detail"]


def test_a_dry_run_sends_the_figures_and_keeps_no_item(tmp_path, state):
    users, _ = transform(tmp_path, "d", fetch(tmp_path / "a", [tx("t1", "2024-05-01T10:00:00Z", 2)]), state,
                         keep=False)  # fmt: skip
    assert income_of(users["u1"]) == {"earnings_30d_usd": 2, "earnings_lifetime_usd": 2}
    assert state.income_items_of(["u1"]) == []


def test_the_30_day_figure_falls_in_a_later_run_without_new_income(tmp_path, state):
    transform(tmp_path, "a", fetch(tmp_path / "a", [tx("t1", "2024-05-01T10:00:00Z", 6)]), state)
    later = END + timedelta(days=30)  # t1 is 30 days and 14 hours old at this run's end
    users, _ = transform(tmp_path, "b", fetch(tmp_path / "b", []), state, end=later)
    assert income_of(users["u1"]) == {"earnings_30d_usd": 0, "earnings_lifetime_usd": 6}


def test_without_income_attributes_in_the_mapping_nothing_is_kept_or_sent(tmp_path, state):
    mapping = load_mapping(with_changes(tmp_path, lambda raw: raw.pop("income")))
    items = [tx("t1", "2024-05-01T10:00:00Z", 2)]
    users, _ = transform(tmp_path, "r", fetch(tmp_path / "a", items), state, mapping=mapping)
    assert income_of(users["u1"]) == {}
    assert state.income_items_of(["u1"]) == []


def test_the_income_columns_are_typed_as_insider_numbers_and_dates(tmp_path, state):
    items = [tx("t1", "2024-05-01T10:00:00Z", 1234.5678)]
    users, _ = transform(tmp_path, "r", fetch(tmp_path / "a", items, [paid("p1", "2024-04-30T08:00:00Z", 1)]),
                         state)  # fmt: skip
    custom = users["u1"]["attributes"]["custom"]
    assert custom["earnings_lifetime_usd"] == 1234.5678  # a Number with its fraction, not an integer
    assert datetime.fromisoformat(custom["last_payout_at"].replace("Z", "+00:00")).tzinfo == UTC


def test_audience_credibility_is_sent_where_the_audience_record_has_it(tmp_path):
    inputs = two_platform_fetch(tmp_path / "in", youtube="CONNECTED")
    path = inputs["audience"][0]
    frame = pd.read_parquet(path)
    frame["credibility_score"] = [0.82, None]  # Instagram's record has it, YouTube's does not
    frame.to_parquet(path, index=False)

    def opt_in(raw):
        raw["attributes"]["custom"]["audience_credibility"]["source"] = "audience.credibility_score"

    user, _ = run(inputs, tmp_path / "out", load_mapping(with_changes(tmp_path, opt_in)))
    custom = user["attributes"]["custom"]
    assert custom["instagram_audience_credibility"] == 0.82
    assert "youtube_audience_credibility" not in custom
    off, _ = run(inputs, tmp_path / "off")  # opt-in: off by default (audience is read by targeted runs)
    assert "instagram_audience_credibility" not in off["attributes"]["custom"]


def test_an_income_attribute_needs_an_event_over_its_source(tmp_path):
    from creator_sync.pipeline.mapping_schema import MappingError

    def no_payout_event(raw):
        raw["events"].pop("payout_received")

    with pytest.raises(MappingError, match="last_payout_at is computed from the payouts"):
        load_mapping(with_changes(tmp_path, no_payout_event))
