"""A brand-new account at the InsightIQ sandbox (`POST /_sandbox/accounts`, devtools.sandbox.new_accounts):
every list holds it consistently (the user's accounts, the platform filter, the last page, profiles, contents
and income by account, date and search), its past beyond the default window is hidden until fetch-historic
jobs run, the webhooks of a new connection are delivered, and the reset drops it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from sandbox_samples import NOW

DAY = 86_400
CONTENTS = "/v1/social/contents"
YOUTUBE = "14d9ddf5-51c6-415e-bde6-f8ed36ad7054"  # contents and income (devtools.sandbox.data.PLATFORMS)
LISTS = {
    "contents": CONTENTS,
    "social_transactions": "/v1/social/income/transactions",
    "social_payouts": "/v1/social/income/payouts",
}
STAMP = {"contents": "published_at", "social_transactions": "transaction_at", "social_payouts": "payout_at"}
ADDED = {
    "contents": "CONTENTS.ADDED",
    "social_transactions": "TRANSACTIONS.ADDED",
    "social_payouts": "PAYOUTS.ADDED",
}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


def _all(iq, path: str, **params) -> list[dict]:
    out, offset = [], 0
    while True:
        page = iq.get(path, params={"limit": 100, "offset": offset, **params})
        assert page.status_code == 200, page.text
        out += page.json()["data"]
        if len(page.json()["data"]) < 100:
            return out
        offset += 100


@pytest.fixture
def creator(iq):
    """A generated user without a YouTube account."""
    for user in iq.get("/v1/users", params={"limit": 50}).json()["data"]:
        held = {a["work_platform"]["id"] for a in _all(iq, "/v1/accounts", user_id=user["id"])}
        if YOUTUBE not in held:
            return user
    pytest.skip("every sampled user has a YouTube account")


def add(sandbox, **body) -> httpx.Response:
    return httpx.post(f"{sandbox.insightiq_url}/_sandbox/accounts", json=body, timeout=30)


def test_a_new_account_is_listed_everywhere_with_its_past_hidden_until_fetched(
    history_sandbox, iq, creator, receiver
):
    events = ["ACCOUNTS.CONNECTED", "PROFILES.ADDED", "CONTENTS.ADDED", "TRANSACTIONS.ADDED", "PAYOUTS.ADDED"]
    assert iq.post("/v1/webhooks", json={"url": receiver.url + "/hook", "events": events}).status_code == 201
    before = len(_all(iq, "/v1/accounts"))
    answer = add(history_sandbox, user_id=creator["id"], work_platform_id=YOUTUBE)
    assert answer.status_code == 200, answer.text
    new = answer.json()
    account_id, cutoff = new["account_id"], _epoch(NOW) - 100 * DAY
    assert new["user_id"] == creator["id"] and new["work_platform_id"] == YOUTUBE
    assert new["items"]["contents"] >= 15 and new["items"]["social_transactions"] >= 5

    # the account: by id, among the user's, on its platform's filter, on the last page of the listing
    account = iq.get(f"/v1/accounts/{account_id}").json()
    assert account["status"] == "CONNECTED" and account["user"]["id"] == creator["id"]
    assert abs(_epoch(account["created_at"]) - time.time()) < 60
    assert account_id in {a["id"] for a in _all(iq, "/v1/accounts", user_id=creator["id"])}
    assert account_id in {a["id"] for a in _all(iq, "/v1/accounts", work_platform_id=YOUTUBE)}
    listing = _all(iq, "/v1/accounts")
    assert len(listing) == before + 1 and listing[-1]["id"] == account_id
    profiles = _all(iq, "/v1/profiles", account_id=account_id)
    assert [p["id"] for p in profiles] == [new["profile_id"]]
    assert (
        iq.get(f"/v1/profiles/{new['profile_id']}").json()["reputation"]["content_count"]
        == (new["items"]["contents"])
    )

    # its past: the default window only, the same by account, by date, by search and by id
    visible = {name: _all(iq, path, account_id=account_id) for name, path in LISTS.items()}
    for name, rows in visible.items():
        assert all(_epoch(r[STAMP[name]]) >= cutoff for r in rows)
        assert len(rows) < new["items"][name] or name not in new["hidden_before"]
    recent = visible["contents"][0]
    day = recent["published_at"][:10]
    assert recent["id"] in {r["id"] for r in _all(iq, CONTENTS, from_date=day, to_date=day)}
    assert iq.post(f"{CONTENTS}/search", json={"ids": [recent["id"]]}).json()["data"] == [recent]
    assert iq.get(f"{CONTENTS}/{recent['id']}").json() == recent

    # fetch-historic jobs reveal the whole past, once, with the webhooks of a new connection before
    for path in LISTS.values():
        assert iq.post(f"{path}/fetch-historic", json={"account_id": account_id}).status_code == 202
    time.sleep(1.3)
    everything = {name: _all(iq, path, account_id=account_id) for name, path in LISTS.items()}
    for name, rows in everything.items():
        assert len(rows) == new["items"][name] == len({r["id"] for r in rows})
        assert {r["account"]["id"] for r in rows} == {account_id}
    old = everything["contents"][0]
    assert _epoch(old["published_at"]) < cutoff  # older than the default window, listed now
    day = old["published_at"][:10]
    assert old["id"] in {r["id"] for r in _all(iq, CONTENTS, from_date=day, to_date=day)}
    assert iq.get(f"{CONTENTS}/{old['id']}").status_code == 200

    revealed = {n: len(everything[n]) > len(visible[n]) for n in LISTS}
    expected = 2 + sum(bool(rows) for rows in visible.values()) + sum(revealed.values())
    deliveries = [json.loads(d["body"]) for d in receiver.wait(expected, timeout=15)]
    assert len(deliveries) == expected
    kinds = [d["event"] for d in deliveries]
    assert kinds.count("ACCOUNTS.CONNECTED") == kinds.count("PROFILES.ADDED") == 1
    assert (
        next(d for d in deliveries if d["event"] == "PROFILES.ADDED")["data"]["profile_id"]
        == new["profile_id"]
    )
    for d in deliveries:
        assert d["data"]["account_id"] == account_id and d["data"]["user_id"] == creator["id"]
    for name, event in ADDED.items():  # the first sync's items and the jobs' items, each once
        announced = [i for d in deliveries if d["event"] == event for i in d["data"]["items"]]
        assert sorted(announced) == sorted(r["id"] for r in everything[name])
