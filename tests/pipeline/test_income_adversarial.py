"""Adversarial checks of the income attributes through the transform: corrections between reads, amounts
as strings, many decimals, huge and negative amounts, currency case."""

from __future__ import annotations

from .test_income_attributes import fetch, income_of, state, transform, tx  # noqa: F401 (fixture)


def test_a_reversed_transaction_is_sent_as_zero_not_left_out(tmp_path, state):  # noqa: F811
    """t1 COMPLETED, then read again REVERSED (the creator's only income): the run sends 0 for both USD
    figures. Left out of the upsert, Insider would keep 10.5 for ever."""
    first, _ = transform(
        tmp_path, "a", fetch(tmp_path / "a", [tx("t1", "2024-05-01T10:00:00Z", 10.5)]), state
    )
    assert income_of(first["u1"]) == {"earnings_30d_usd": 10.5, "earnings_lifetime_usd": 10.5}
    again = [tx("t1", "2024-05-01T10:00:00Z", 10.5, status="REVERSED")]
    second, _ = transform(tmp_path, "b", fetch(tmp_path / "b", again), state)
    assert income_of(second["u1"]) == {"earnings_30d_usd": 0, "earnings_lifetime_usd": 0}


def test_amounts_as_strings_with_many_decimals_refunds_and_currency_case(tmp_path, state):  # noqa: F811
    items = [
        tx("t1", "2024-05-01T10:00:00Z", "10.1234567", "usd"),  # rounded to micro-units
        tx("t2", "2024-05-01T11:00:00Z", "-2.5", "USD"),  # a refund
        tx("t3", "2024-05-01T12:00:00Z", " 1e3 ", " Usd "),
    ]
    users, malformed = transform(tmp_path, "a", fetch(tmp_path / "a", items), state)
    assert malformed == []
    assert income_of(users["u1"]) == {"earnings_30d_usd": 1007.623457, "earnings_lifetime_usd": 1007.623457}


def test_huge_amounts_are_summed_not_a_failed_run(tmp_path, state):  # noqa: F811
    items = [tx(f"t{i}", "2024-05-01T10:00:00Z", 8_999_999_999_999) for i in range(3)]
    users, _ = transform(tmp_path, "a", fetch(tmp_path / "a", items), state)
    assert income_of(users["u1"])["earnings_lifetime_usd"] == 26_999_999_999_997
