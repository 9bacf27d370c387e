"""The income attributes end to end against the sandboxes, without Airflow: two creator_sync runs whose
income reads overlap (manual runs with look-backs: the second reads days the first read, and ends earlier,
as a backfill would) send, for every creator with income, the per-currency 30-day and lifetime earnings and
the last payout computed from the distinct transactions and payouts the two runs read - an item read by
both counts once - and the Insider sandbox stores exactly those values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from creator_sync.pipeline.sources import discover_inputs
from creator_sync.sync.run_context import SyncRun

from .factories import SANDBOX_NOW
from .test_incremental_fetch import sync

pytestmark = [pytest.mark.slow]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# which income items are sent is checked, not the 10/s limit
SANDBOX_RATE = 200

ANCHOR = datetime.fromisoformat(SANDBOX_NOW.replace("Z", "+00:00")).astimezone(UTC)
DAY = timedelta(days=1)


@pytest.fixture
def synced(sandbox_env, shared_rate_budget, local_sync_store):
    return sandbox_env


def manual(name: str, end: datetime, lookback_days: int) -> SyncRun:
    return SyncRun(f"manual__{name}", end - DAY, end, False, False, (), 24 * lookback_days, "manual")


def _read(run: SyncRun, resource: str) -> pd.DataFrame:
    paths = discover_inputs(run.dir / "fetch").get(resource) or []
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True) if paths else pd.DataFrame()


def expected(runs: list[SyncRun], as_of: datetime) -> dict[str, dict]:
    """The attributes computed here from the distinct items the runs' fetches wrote (by id)."""
    tx = pd.concat([_read(r, "transactions") for r in runs], ignore_index=True).drop_duplicates("id")
    payouts = pd.concat([_read(r, "payouts") for r in runs], ignore_index=True).drop_duplicates("id")
    out: dict[str, dict] = {}
    tx = tx[tx["status"].isna() | (tx["status"] == "COMPLETED")]
    tx = tx.assign(at=pd.to_datetime(tx["transaction_at"], utc=True, format="ISO8601"))
    for (user, currency), rows in tx.groupby(["user.id", "currency"]):
        mine = out.setdefault(user, {})
        code = currency.lower()
        mine[f"earnings_lifetime_{code}"] = round(sum(round(a * 1e6) for a in rows["amount"]) / 1e6, 6)
        recent = rows[rows["at"] >= as_of - timedelta(days=30)]
        mine[f"earnings_30d_{code}"] = round(sum(round(a * 1e6) for a in recent["amount"]) / 1e6, 6)
    paid = payouts[payouts["status"] == "PAID"]
    paid = paid.assign(at=pd.to_datetime(paid["payout_at"], utc=True, format="ISO8601"))
    for user, rows in paid.groupby("user.id"):
        newest = rows.sort_values(["at", "id"]).iloc[-1]
        out.setdefault(user, {}).update(
            {
                "last_payout_at": newest["at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "last_payout_amount": float(newest["amount"]),
                "last_payout_currency": newest["currency"].upper(),
            }
        )
    return out


def stored(sandbox, user_ids: list[str]) -> dict[str, dict]:
    found = httpx.post(f"{sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": user_ids}, timeout=60)
    data = found.json()["data"]
    return {u: (data.get(u) or {}).get("attributes", {}).get("custom", {}) for u in user_ids}


def income_part(custom: dict) -> dict:
    keys = ("earnings_30d_", "earnings_lifetime_", "last_payout_")
    return {k: v for k, v in custom.items() if k.startswith(keys)}


def test_two_runs_with_overlapping_income_reads_send_each_item_once(synced):
    first = manual("income-1", ANCHOR, lookback_days=4)  # reads the 5 days before the anchor
    second = manual("income-2", ANCHOR - DAY, lookback_days=6)  # 7 days, the first's 4 older ones among them
    one = sync(first)
    assert one["stats"].rows_read.get("transactions", 0) > 0
    two = sync(second)
    overlap = set(_read(first, "transactions")["id"]) & set(_read(second, "transactions")["id"])
    assert overlap, "the two runs' reads overlap"
    want = expected([first, second], as_of=ANCHOR)  # the window ends at the later end of the two
    sent = {u for u in {**one["users"], **two["users"]}}
    creators = sorted(u for u in want if u in sent)
    assert creators
    at_insider = stored(synced, creators)
    mismatched = {
        u: (income_part(at_insider[u]), want[u]) for u in creators if income_part(at_insider[u]) != want[u]
    }
    assert not mismatched, list(mismatched.items())[:3]
    # the second run's users carry the same totals (an item of the overlap is not counted again)
    for user in creators:
        if user in two["users"]:
            assert income_part(two["users"][user]["attributes"]["custom"]) == want[user]
