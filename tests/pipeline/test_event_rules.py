"""Insider's required event params per event name (insider-upsert-user-data.md): purchase, cart_page_view."""

from __future__ import annotations

import pandas as pd
import pytest

from creator_sync.pipeline import validate
from creator_sync.pipeline.validate import (
    CART_PAGE_VIEW_MISSING_PARAMS,
    PURCHASE_MISSING_PARAMS,
    event_reasons,
)

TS = "2024-05-01T10:00:00Z"


def reasons(names: list[str], **params: list) -> list:
    frame = pd.DataFrame(params, index=pd.RangeIndex(len(names)))
    got = event_reasons(pd.Series(names, dtype="str"), pd.Series([TS] * len(names)), frame)
    return [None if pd.isna(r) else r for r in got.tolist()]


def test_cart_page_view_needs_event_group_id_currency_and_unit_sale_price_but_no_quantity():
    got = reasons(
        ["cart_page_view", "cart_page_view", "cart_page_view", "purchase", "content_published"],
        event_group_id=[None, "C1", "C1", "O1", None],
        currency=["USD", None, "USD", "USD", None],
        unit_sale_price=[1.0, 1.0, 1.0, 1.0, None],
        quantity=[None, None, None, None, None],
    )
    assert got == [
        CART_PAGE_VIEW_MISSING_PARAMS,
        CART_PAGE_VIEW_MISSING_PARAMS,
        None,
        PURCHASE_MISSING_PARAMS,
        None,
    ]


def test_a_cart_page_view_without_any_param_column_is_rejected():
    assert reasons(["cart_page_view"]) == [CART_PAGE_VIEW_MISSING_PARAMS]


def test_the_guard_fails_with_the_purchase_rule_only(monkeypatch):
    """The guard switched off (only purchase checked): a cart_page_view without event_group_id passes."""
    monkeypatch.setattr(
        validate, "REQUIRED_EVENT_PARAMS", {"purchase": validate.REQUIRED_EVENT_PARAMS["purchase"]}
    )
    assert reasons(["cart_page_view"], currency=["USD"], unit_sale_price=[1.0]) == [None]


@pytest.mark.parametrize("name", ["purchase", "cart_page_view"])
def test_the_arrow_path_checks_every_event_with_required_params(name):
    import pyarrow as pa

    from creator_sync.pipeline import events

    spec = type("Spec", (), {"name": name})()
    out = events._reasons(spec, pa.array([TS]), {"currency": pa.array(["USD"])})
    assert out.to_pylist() == [validate.REQUIRED_EVENT_PARAMS[name][1]]
