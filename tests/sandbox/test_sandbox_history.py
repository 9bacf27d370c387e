"""The InsightIQ sandbox's model of an account's past (devtools.sandbox.data.History): a newly connected
account's items older than the default window stay hidden from the lists, the bulk search and the item
endpoint until a fetch-historic job for that account and collection has run for `historic_job_seconds`;
then they appear once, announced by `*.ADDED` webhooks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from sandbox_samples import NOW

DAY = 86_400
LISTS = {
    "contents": ("/v1/social/contents", "from_date", "to_date"),
    "social_transactions": (
        "/v1/social/income/transactions",
        "transaction_from_date",
        "transaction_to_date",
    ),
    "social_payouts": ("/v1/social/income/payouts", "payout_from_date", "payout_to_date"),
}
STAMP = {"contents": "published_at", "social_transactions": "transaction_at", "social_payouts": "payout_at"}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


def _all(iq, name: str, account_id: str, **params) -> list[dict]:
    path = LISTS[name][0]
    out, offset = [], 0
    while True:
        page = iq.get(path, params={"account_id": account_id, "limit": 100, "offset": offset, **params})
        assert page.status_code == 200, page.text
        rows = page.json()["data"]
        out += rows
        if len(rows) < 100:
            return out
        offset += 100


@pytest.fixture
def income_account(iq):
    """A connected YouTube/Twitch/Patreon account with transactions and payouts."""
    for account in iq.get("/v1/accounts", params={"limit": 100}).json()["data"]:
        if _all(iq, "social_transactions", account["id"]) and _all(iq, "social_payouts", account["id"]):
            return account
    pytest.skip("no income account in the data set")


def test_generated_accounts_hide_nothing_by_default(iq, income_account):
    """Without a connection through the sandbox every item is listed (the existing tests' data)."""
    stamps = [_epoch(r[STAMP["contents"]]) for r in _all(iq, "contents", income_account["id"])]
    assert min(stamps) < _epoch(NOW) - 300 * DAY


def test_a_new_connection_hides_the_past_until_its_fetch_historic_job_ran(
    history_sandbox, iq, income_account, receiver
):
    account_id = income_account["id"]
    before = {name: _all(iq, name, account_id) for name in LISTS}
    hook = iq.post(
        "/v1/webhooks",
        json={
            "url": receiver.url + "/hook",
            "events": ["ACCOUNTS.CONNECTED", "CONTENTS.ADDED", "TRANSACTIONS.ADDED", "PAYOUTS.ADDED"],
        },
    )
    assert hook.status_code == 201, hook.text
    connected = httpx.post(
        f"{history_sandbox.insightiq_url}/_sandbox/connect", json={"account_id": account_id}
    )
    assert connected.status_code == 200, connected.text
    cutoff = _epoch(NOW) - 100 * DAY
    receiver.wait(1)
    assert receiver.json(0)["event"] == "ACCOUNTS.CONNECTED"

    visible = {}
    for name in LISTS:
        visible[name] = _all(iq, name, account_id)
        assert {r["id"] for r in visible[name]} < {r["id"] for r in before[name]}
        assert all(_epoch(r[STAMP[name]]) >= cutoff for r in visible[name])
    old = next(r for r in before["contents"] if _epoch(r["published_at"]) < cutoff)
    # hidden from the global list, the bulk search and the item endpoint too
    path, lo, hi = LISTS["contents"]
    day = old["published_at"][:10]
    assert old["id"] not in {
        r["id"] for r in iq.get(path, params={lo: day, hi: day, "limit": 100}).json()["data"]
    }
    assert iq.post(f"{path}/search", json={"ids": [old["id"]]}).json()["data"] == []
    assert iq.get(f"{path}/{old['id']}").status_code == 404

    # contents from a from_date: only those, after the job's delay; the other collections stay as they were
    from_date = datetime.fromtimestamp(cutoff - 60 * DAY, UTC).date().isoformat()
    job = iq.post(f"{path}/fetch-historic", json={"account_id": account_id, "from_date": from_date})
    assert job.status_code == 202 and job.json()["status"] == "IN_PROGRESS"
    assert _all(iq, "contents", account_id) == visible["contents"]  # not before the job finished
    time.sleep(1.3)
    after = _all(iq, "contents", account_id)
    expected = [r for r in before["contents"] if r["published_at"][:10] >= from_date]
    assert [r["id"] for r in after] == [r["id"] for r in expected]
    assert iq.get(f"{path}/{old['id']}").status_code == (
        200 if old["published_at"][:10] >= from_date else 404
    )
    assert _all(iq, "social_transactions", account_id) == visible["social_transactions"]

    # a job without from_date covers the whole past; income collections are separate jobs
    for name in ("social_transactions", "social_payouts"):
        assert iq.post(f"{LISTS[name][0]}/fetch-historic", json={"account_id": account_id}).status_code == 202
    time.sleep(1.3)
    for name in ("social_transactions", "social_payouts"):
        assert _all(iq, name, account_id) == before[name]

    # every revealed item is announced once, <= 100 ids per event
    added = {
        "CONTENTS.ADDED": "contents",
        "TRANSACTIONS.ADDED": "social_transactions",
        "PAYOUTS.ADDED": "social_payouts",
    }
    revealed = {
        n: {r["id"] for r in (after if n == "contents" else before[n])} - {r["id"] for r in visible[n]}
        for n in LISTS
    }
    expected_events = sum(1 for n in LISTS if revealed[n])
    deliveries = receiver.wait(1 + expected_events, timeout=15)
    announced: dict[str, list[str]] = {n: [] for n in LISTS}
    for d in deliveries[1:]:
        body = json.loads(d["body"])
        assert body["data"]["account_id"] == account_id and len(body["data"]["items"]) <= 100
        announced[added[body["event"]]] += body["data"]["items"]
    for n in LISTS:
        assert sorted(announced[n]) == sorted(revealed[n])


def test_fetch_historic_of_an_unknown_account_is_a_404(history_sandbox, iq):
    assert iq.post("/v1/social/contents/fetch-historic", json={"account_id": "nope"}).status_code == 404
    bad = httpx.post(f"{history_sandbox.insightiq_url}/_sandbox/connect", json={"account_id": "nope"})
    assert bad.status_code == 400
