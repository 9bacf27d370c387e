"""payout_received: social payouts -> Insider events, only the PAID ones (the mapping's `where`), keyed by the
payout id."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pyarrow as pa
import pytest

from creator_sync.pipeline import events as ev
from creator_sync.pipeline.mapping import load_mapping

H = datetime(2026, 3, 2, 10, tzinfo=UTC)


def payout(pid: str, status: str, at: str) -> dict:
    return {
        "id": pid,
        "user.id": "u1",
        "account.id": "a1",
        "work_platform.name": "YouTube",
        "amount": 120.5,
        "currency": "usd",
        "status": status,
        "payout_at": at,
    }


CHUNK = pa.Table.from_pylist(
    [
        payout("p1", "PAID", "2026-03-02T10:15:00.000000"),
        payout("p2", "PENDING", "2026-03-02T10:20:00.000000"),
        payout("p3", "PAID", "2026-03-02T09:59:59.000000"),  # before the interval
    ]
)


def spec(**where) -> SimpleNamespace:
    """The mapping's payout_received with the given `where` (mapping key `where: {column: [values]}`)."""
    base = load_mapping().events["payout_received"]
    fields = {name: getattr(base, name) for name in asdict(base)}
    return SimpleNamespace(**{**fields, "where": where})


def built(event_spec) -> list[dict]:
    kept, ts = ev.in_interval(CHUNK, event_spec, H, H + timedelta(hours=1))
    return [json.loads(e) for e in ev.build_events(kept, ts, event_spec)["event_json"].to_pylist()]


def test_only_paid_payouts_inside_the_interval_are_received():
    (event,) = built(spec(status=["PAID"]))
    assert event["event_name"] == "payout_received"
    assert event["timestamp"] == "2026-03-02T10:15:00Z"
    assert event["event_params"]["currency"] == "USD"
    assert event["event_params"]["custom"]["payout_id"] == "p1"
    assert event["event_params"]["custom"]["amount"] == 120.5


def test_without_the_where_a_pending_payout_would_be_received_too():
    assert [e["event_params"]["custom"]["payout_id"] for e in built(spec())] == ["p1", "p2"]


def test_a_where_column_that_is_not_read_is_a_mapping_error():
    with pytest.raises(ValueError, match="where column 'payout_status' is not among the columns read"):
        built(spec(payout_status=["PAID"]))


def test_where_as_column_value_pairs_filters_the_same():
    """The mapping loader may hold `where` as (column, values) pairs rather than a dict."""
    pairs = spec()
    pairs.where = (("status", ("PAID",)),)
    assert [e["event_params"]["custom"]["payout_id"] for e in built(pairs)] == ["p1"]
