"""Sandbox change generation: `/_sandbox/mutate` with kinds of changes, the data they add and the signed
webhooks that announce them. A sandbox of its own (changes would move the shared sandbox's lists)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest
from sandbox_samples import IQ_AUTH, NOW

from devtools.sandbox.launcher import SandboxServers

EVENTS = [
    "PROFILES.UPDATED",
    "CONTENTS.ADDED",
    "TRANSACTIONS.ADDED",
    "ACCOUNTS.CONNECTED",
    "ACCOUNTS.DISCONNECTED",
    "PAYOUTS.ADDED",
    "SESSION.EXPIRED",
]


@pytest.fixture(scope="module")
def changing():
    sb = SandboxServers(
        creators=200,
        seed=11,
        extra_args=["--insightiq-rate", "100000", "--insightiq-concurrency", "1000", "--now", NOW],
    )
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def iq(changing):
    with httpx.Client(base_url=changing.insightiq_url, auth=IQ_AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def subscribed(iq, receiver):
    hook = iq.post("/v1/webhooks", json={"url": receiver.url + "/hook", "events": EVENTS}).json()
    yield receiver
    iq.delete(f"/v1/webhooks/{hook['id']}")


def mutate(sb, **body) -> httpx.Response:
    return httpx.post(f"{sb.insightiq_url}/_sandbox/mutate", json=body, timeout=60)


def delivered(receiver, count: int) -> list[dict]:
    got = receiver.wait(count, timeout=30)
    assert len(got) == count, f"{len(got)} of {count} webhooks arrived"
    for request in got:
        expected = hmac.new(b"sandbox-client-secret", request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["Webhook-Signatures"] == expected
    return [json.loads(r["body"]) for r in got]


def creator_with_income(iq) -> dict:
    for offset in range(0, 400, 100):
        for account in iq.get("/v1/accounts", params={"limit": 100, "offset": offset}).json()["data"]:
            if account["data"]["income"]["status"] == "SYNCED" and account["status"] == "CONNECTED":
                return account
    raise AssertionError("no income-synced account")


def test_every_kind_adds_its_data_and_sends_its_webhooks(changing, iq, subscribed):
    account = creator_with_income(iq)
    user_id = account["user"]["id"]
    accounts = iq.get("/v1/accounts", params={"user_id": user_id}).json()["data"]
    today = datetime.now(UTC).date().isoformat()
    before = iq.get("/v1/social/contents", params={"from_date": today, "limit": 100}).json()["data"]

    result = mutate(changing, user_ids=[user_id], kinds=["profiles", "contents", "transactions", "accounts"])
    assert result.status_code == 200, result.text
    body = result.json()
    engaged = [a for a in accounts if a["data"]["engagement"]["status"] != "NOT_SUPPORTED"]
    income = [a for a in accounts if a["data"]["income"]["status"] == "SYNCED"]
    expected = {
        "PROFILES.UPDATED": len(accounts),
        "CONTENTS.ADDED": len(engaged),
        "TRANSACTIONS.ADDED": len(income),
        "ACCOUNTS.DISCONNECTED": 1,  # the creator's first account was connected
    }
    assert body["events"] == {k: v for k, v in expected.items() if v}
    events = delivered(subscribed, sum(expected.values()))
    assert {(e["event"], e["data"]["account_id"]) for e in events if e["event"] == "PROFILES.UPDATED"} == {
        ("PROFILES.UPDATED", a["id"]) for a in accounts
    }
    assert all(e["data"]["user_id"] == user_id and e["data"]["last_updated_time"] for e in events)

    # the announced items exist: by bulk search, and in the date-filtered lists from now on
    contents = [i for e in events if e["event"] == "CONTENTS.ADDED" for i in e["data"]["items"]]
    assert sorted(contents) == sorted(body["items"]["contents"]) and contents
    found = iq.post("/v1/social/contents/search", json={"ids": contents}).json()["data"]
    assert sorted(c["id"] for c in found) == sorted(contents)
    after = iq.get("/v1/social/contents", params={"from_date": today, "limit": 100}).json()["data"]
    assert {c["id"] for c in after} - {c["id"] for c in before} == set(contents)
    transactions = [i for e in events if e["event"] == "TRANSACTIONS.ADDED" for i in e["data"]["items"]]
    assert transactions
    found = iq.post("/v1/social/income/transactions/search", json={"ids": transactions}).json()["data"]
    assert sorted(t["id"] for t in found) == sorted(transactions)
    listed = iq.get(
        "/v1/social/income/transactions",
        params={"account_id": account["id"], "transaction_from_date": today, "limit": 100},
    ).json()["data"]
    assert {t["id"] for t in listed} & set(transactions)

    # accounts: the flip is visible, and flipping back sends ACCOUNTS.CONNECTED
    first = accounts[0]["id"]
    assert iq.get(f"/v1/accounts/{first}").json()["status"] == "NOT_CONNECTED"
    again = mutate(changing, user_ids=[user_id], kinds=["accounts"]).json()
    assert again["events"] == {"ACCOUNTS.CONNECTED": 1}
    assert delivered(subscribed, len(events) + 1)[-1]["data"]["account_id"] == first
    assert iq.get(f"/v1/accounts/{first}").json()["status"] == "CONNECTED"


def test_more_than_100_items_come_as_several_events(changing, iq, subscribed):
    account = creator_with_income(iq)
    body = mutate(
        changing, user_ids=[account["user"]["id"]], kinds=["contents"], items_per_account=150
    ).json()
    engaged = sum(
        1
        for a in iq.get("/v1/accounts", params={"user_id": account["user"]["id"]}).json()["data"]
        if a["data"]["engagement"]["status"] != "NOT_SUPPORTED"
    )
    assert body["events"] == {"CONTENTS.ADDED": 2 * engaged}
    events = delivered(subscribed, 2 * engaged)
    assert sorted(len(e["data"]["items"]) for e in events) == [50] * engaged + [100] * engaged


def test_a_fraction_of_the_fleet_changes(changing):
    body = mutate(changing, fraction=0.05, kinds=["profiles", "transactions"]).json()
    assert len(body["user_ids"]) == 10
    assert body["events"]["PROFILES.UPDATED"] == len(body["profile_ids"]) >= 10
    assert body["events"]["TRANSACTIONS.ADDED"] == len(body["items"]["social_transactions"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kinds": ["profiles", "likes"]}, "'kinds' must be a non-empty list of profiles, contents"),
        ({"kinds": []}, "'kinds' must be a non-empty list"),
        (
            {"kinds": ["contents"], "items_per_account": 0},
            "'items_per_account' must be a whole number 1..1000",
        ),
        ({"kinds": ["contents"], "items_per_account": True}, "'items_per_account'"),
    ],
)
def test_bad_change_requests_are_refused_with_what_to_fix(changing, body, message):
    response = mutate(changing, fraction=0.01, **body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_default_stays_profiles_only(changing):
    body = mutate(changing, fraction=0.01).json()
    assert set(body["events"]) == {"PROFILES.UPDATED"}


def test_payouts_and_session_expiries_change_the_data_and_send_their_webhooks(changing, iq, subscribed):
    account = creator_with_income(iq)
    user_id = account["user"]["id"]
    accounts = iq.get("/v1/accounts", params={"user_id": user_id}).json()["data"]
    first, income = accounts[0], [a for a in accounts if a["data"]["income"]["status"] == "SYNCED"]
    reconnect = first["status"] != "CONNECTED"  # an earlier change left it lapsed: reconnect it first
    if reconnect:
        assert mutate(changing, user_ids=[user_id], kinds=["accounts"]).json()["events"] == {
            "ACCOUNTS.CONNECTED": 1
        }
        first = iq.get(f"/v1/accounts/{first['id']}").json()
    body = mutate(changing, user_ids=[user_id], kinds=["payouts", "sessions"]).json()
    assert body["events"] == {"PAYOUTS.ADDED": len(income), "SESSION.EXPIRED": 1}
    events = delivered(subscribed, reconnect + len(income) + 1)[reconnect:]
    payouts = [i for e in events if e["event"] == "PAYOUTS.ADDED" for i in e["data"]["items"]]
    assert sorted(payouts) == sorted(body["items"]["social_payouts"]) and payouts
    found = iq.post("/v1/social/income/payouts/search", json={"ids": payouts}).json()["data"]
    assert sorted(p["id"] for p in found) == sorted(payouts)
    assert {p["status"] for p in found} == {"PAID"}
    today = datetime.now(UTC).date().isoformat()
    listed = iq.get(
        "/v1/social/income/payouts",
        params={"account_id": account["id"], "payout_from_date": today, "limit": 100},
    ).json()["data"]
    assert {p["id"] for p in listed} & set(payouts)

    # the status change moves updated_at to its time; a second one reconnects the account
    expired = iq.get(f"/v1/accounts/{first['id']}").json()
    assert expired["status"] == "SESSION_EXPIRED" and expired["disconnection_source"] == "PLATFORM"
    moved = datetime.fromisoformat(expired["updated_at"]).replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - moved).total_seconds()) < 120
    assert mutate(changing, user_ids=[user_id], kinds=["sessions"]).json()["events"] == {
        "ACCOUNTS.CONNECTED": 1
    }
    back = iq.get(f"/v1/accounts/{first['id']}").json()
    assert back["status"] == "CONNECTED" and back["disconnection_source"] is None
