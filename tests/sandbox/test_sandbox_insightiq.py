"""InsightIQ sandbox against the doc: every sample request, auth, paging, dates, errors, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest
from sandbox_samples import IQ_CREATE_USER, IQ_SDK_PRODUCTS, IQ_SEND, IQ_UPDATE_ACCOUNT, IQ_WEBHOOK

pytestmark = pytest.mark.slow
COLLECTIONS = {
    "/v1/social/contents": ("from_date", "to_date", "published_at"),
    "/v1/social/content-groups": ("from_date", "to_date", "published_at"),
    "/v1/social/income/transactions": ("transaction_from_date", "transaction_to_date", "transaction_at"),
    "/v1/social/income/payouts": ("payout_from_date", "payout_to_date", "payout_at"),
    "/v1/commerce/income/transactions": ("transaction_from_date", "transaction_to_date", "transaction_at"),
    "/v1/commerce/income/payouts": ("payout_from_date", "payout_to_date", "payout_at"),
    "/v1/commerce/income/balances": ("balance_from_date", "balance_to_date", "balance_at"),
}


def first_account_with(iq, path):
    for page in range(0, 2000, 100):
        for account in iq.get("/v1/accounts", params={"limit": 100, "offset": page}).json()["data"]:
            response = iq.get(path, params={"account_id": account["id"], "limit": 1})
            if response.json()["data"]:
                return account
    raise AssertionError(f"no account with {path}")


def test_auth_required(sandbox):
    for auth in (None, ("sandbox-client-id", "wrong"), ("other", "sandbox-client-secret")):
        r = httpx.get(f"{sandbox.insightiq_url}/v1/users", auth=auth)
        assert r.status_code == 401
        assert r.json()["error"]["status_code"] == 401


def test_work_platforms(iq):
    platforms = iq.get("/v1/work-platforms", params={"limit": 100}).json()["data"]
    assert {"Instagram", "YouTube", "TikTok", "Twitch", "Patreon"} <= {p["name"] for p in platforms}
    yt = iq.get("/v1/work-platforms", params={"name": "YouTube"}).json()["data"]
    assert [p["name"] for p in yt] == ["YouTube"]
    assert iq.get(f"/v1/work-platforms/{yt[0]['id']}").json()["name"] == "YouTube"
    assert iq.get("/v1/work-platforms/nope").status_code == 404


def test_users_paging_and_lookup(iq):
    page1 = iq.get("/v1/users", params={"limit": 100}).json()
    assert set(page1) == {"data", "metadata"} and page1["metadata"]["limit"] == 100
    page2 = iq.get("/v1/users", params={"limit": 100, "offset": 100}).json()["data"]
    assert not {u["id"] for u in page1["data"]} & {u["id"] for u in page2}
    assert len(iq.get("/v1/users").json()["data"]) == 10  # default limit
    user = page1["data"][3]
    assert iq.get(f"/v1/users/{user['id']}").json() == user
    assert iq.get(f"/v1/users/external_id/{user['external_id']}").json() == user
    assert iq.get("/v1/users/external_id/nobody").status_code == 404


def test_create_user_sample_and_duplicate_external_id_is_409(iq):
    created = iq.post("/v1/users", json=IQ_CREATE_USER)
    if created.status_code == 409:  # session fixture: created by an earlier run of this test in the session
        pytest.skip("already created")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Arvind" and body["external_id"] == IQ_CREATE_USER["external_id"]
    assert iq.get(f"/v1/users/{body['id']}").json() == body
    assert iq.get(f"/v1/users/external_id/{IQ_CREATE_USER['external_id']}").json() == body
    duplicate = iq.post("/v1/users", json=IQ_CREATE_USER)
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["error"]["message"]
    token = iq.post("/v1/sdk-tokens", json={"user_id": body["id"], "products": IQ_SDK_PRODUCTS})
    assert token.status_code == 201 and token.json()["sdk_token"] and token.json()["expires_at"]


def test_limit_over_100_is_400_with_clear_message(iq):
    for path in ("/v1/users", "/v1/profiles", "/v1/social/contents"):
        r = iq.get(path, params={"limit": 101})
        assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    assert iq.get("/v1/profiles", params={"limit": 100}).status_code == 200


def test_accounts_filters_update_disconnect(iq):
    user = iq.get("/v1/users", params={"limit": 1, "offset": 5}).json()["data"][0]
    accounts = iq.get("/v1/accounts", params={"user_id": user["id"]}).json()["data"]
    assert 1 <= len(accounts) <= 3 and all(a["user"]["id"] == user["id"] for a in accounts)
    account = accounts[0]
    assert account["status"] in ("CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED")
    assert set(account["data"]) == {"identity", "engagement", "income"}
    pid = account["work_platform"]["id"]
    on_platform = iq.get("/v1/accounts", params={"work_platform_id": pid, "limit": 100}).json()["data"]
    assert on_platform and all(a["work_platform"]["id"] == pid for a in on_platform)
    patched = iq.patch(f"/v1/accounts/{account['id']}", json=IQ_UPDATE_ACCOUNT)
    assert patched.status_code == 200 and patched.json()["data"]["identity"]["monitoring_type"] == "STANDARD"
    assert iq.post(f"/v1/accounts/{account['id']}/disconnect").json()["status"] == "NOT_CONNECTED"
    assert iq.get(f"/v1/accounts/{account['id']}").json()["status"] == "NOT_CONNECTED"
    assert iq.get("/v1/accounts/00000000-0000-4000-8000-000000000000").status_code == 404


def test_profiles_fields_filters_refresh_audience(iq):
    profiles = iq.get("/v1/profiles", params={"limit": 50}).json()["data"]
    p = profiles[0]
    for key in (
        "id",
        "user",
        "account",
        "work_platform",
        "username",
        "full_name",
        "first_name",
        "last_name",
        "url",
        "image_url",
        "introduction",
        "country",
        "gender",
        "language",
        "reputation",
        "emails",
        "phone_numbers",
        "is_verified",
        "created_at",
        "updated_at",
    ):
        assert key in p
    assert set(p["reputation"]) >= {
        "follower_count",
        "following_count",
        "subscriber_count",
        "content_count",
        "content_group_count",
        "watch_time_in_hours",
    }
    assert iq.get(f"/v1/profiles/{p['id']}").json() == p
    assert iq.get("/v1/profiles", params={"account_id": p["account"]["id"]}).json()["data"] == [p]
    assert all(
        x["user"]["id"] == p["user"]["id"]
        for x in iq.get("/v1/profiles", params={"user_id": p["user"]["id"]}).json()["data"]
    )
    assert iq.post("/v1/profiles/refresh", json={"account_id": p["account"]["id"]}).status_code == 202
    audience = iq.get("/v1/audience", params={"account_id": p["account"]["id"]}).json()
    assert {"countries", "cities", "gender_age_distribution"} <= set(audience)
    missing = iq.get("/v1/audience")
    assert missing.status_code == 400 and "account_id" in missing.json()["error"]["message"]


@pytest.mark.parametrize("path", list(COLLECTIONS))
def test_collection_endpoints(iq, path):
    from_param, to_param, time_field = COLLECTIONS[path]
    account = first_account_with(iq, path)
    params = {"account_id": account["id"], "limit": 100}
    items = iq.get(path, params=params).json()["data"]
    assert items and all(i["account"]["id"] == account["id"] for i in items)
    item = items[len(items) // 2]
    assert iq.get(f"{path}/{item['id']}").json() == item
    day = item[time_field][:10]
    filtered = iq.get(path, params={**params, from_param: day, to_param: day}).json()
    assert item in filtered["data"] and all(i[time_field][:10] == day for i in filtered["data"])
    assert filtered["metadata"]["from_date"] == day
    searched = iq.post(f"{path}/search", json={"ids": [item["id"], "00000000-0000-4000-8000-000000000000"]})
    assert searched.json()["data"] == [item]
    for job in ("refresh", "fetch-historic"):
        body = {"account_id": account["id"], "from_date": "2020-04-01"}
        assert iq.post(f"{path}/{job}", json=body).status_code == 202
    assert iq.get(f"{path}/00000000-0000-4000-8000-000000000000").status_code == 404


def test_account_id_required_where_documented(iq):
    for path in ("/v1/social/comments", "/v1/social/income/transactions"):
        r = iq.get(path)
        assert r.status_code == 400 and "account_id" in r.json()["error"]["message"]
    account = first_account_with(iq, "/v1/social/comments")
    assert iq.get("/v1/social/comments", params={"account_id": account["id"]}).json()["data"]


def test_contents_without_account_date_window_and_stable_paging(iq):
    window = {"from_date": "2025-12-01", "to_date": "2025-12-31", "limit": 100}
    seen = []
    for offset in range(0, 100_000, 100):
        page = iq.get("/v1/social/contents", params={**window, "offset": offset}).json()["data"]
        seen += page
        if len(page) < 100:
            break
    assert len(seen) > 100
    assert len({c["id"] for c in seen}) == len(seen)
    stamps = [c["published_at"] for c in seen]
    assert stamps == sorted(stamps) and stamps[0] >= "2025-12-01" and stamps[-1] < "2026-01-01"
    bad = iq.get("/v1/social/contents", params={"from_date": "yesterday"})
    assert bad.status_code == 400


def test_invalid_creator_truth(sandbox, iq):
    stats = sandbox.stats("insightiq")
    assert stats["creators"] == 300
    assert stats["invalid_by_reason"] == {
        "malformed_email": 9,
        "non_e164_phone": 9,
        "no_usable_identifier": 9,
    }
    assert stats["invalid_creators"] == 27
    invalid = httpx.get(f"{sandbox.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    assert len(invalid) == 27
    row = next(r for r in invalid if r["reason"] == "no_usable_identifier")
    for profile in iq.get("/v1/profiles", params={"user_id": row["user_id"]}).json()["data"]:
        assert profile["emails"] == [] and profile["phone_numbers"] == []


def test_webhooks_crud_send_signature_and_mutate(sandbox, iq, receiver):
    created = iq.post("/v1/webhooks", json=IQ_WEBHOOK)
    assert created.status_code == 201
    hook = created.json()
    assert iq.get(f"/v1/webhooks/{hook['id']}").json()["url"] == IQ_WEBHOOK["url"]
    updated = iq.put(f"/v1/webhooks/{hook['id']}", json={**IQ_WEBHOOK, "url": receiver.url + "/hook"})
    assert updated.json()["url"] == receiver.url + "/hook"
    assert hook["id"] in {h["id"] for h in iq.get("/v1/webhooks").json()["data"]}
    sent = iq.post("/v1/webhooks/send", json=IQ_SEND)
    assert sent.status_code == 202
    got = receiver.wait(1)[0]
    payload = json.loads(got["body"])
    assert (
        payload["id"]
        and payload["event"] == "PROFILES.ADDED"
        and payload["data"] == IQ_SEND["payload"]["data"]
    )
    expected = hmac.new(b"sandbox-client-secret", got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["Webhook-Signatures"] == expected
    user = iq.get("/v1/users", params={"limit": 1, "offset": 42}).json()["data"][0]
    before = iq.get("/v1/profiles", params={"user_id": user["id"]}).json()["data"]
    mutated = httpx.post(f"{sandbox.insightiq_url}/_sandbox/mutate", json={"user_ids": [user["id"]]}).json()
    assert mutated["user_ids"] == [user["id"]]
    after = iq.get("/v1/profiles", params={"user_id": user["id"]}).json()["data"]
    for b, a in zip(before, after, strict=True):
        assert a["reputation"]["follower_count"] != b["reputation"]["follower_count"]
        assert a["updated_at"] > b["updated_at"]
    events = [json.loads(r["body"]) for r in receiver.wait(1 + len(after))[1:]]
    assert {e["data"]["profile_id"] for e in events} == {p["id"] for p in after}
    assert all(e["event"] == "PROFILES.UPDATED" and e["data"]["user_id"] == user["id"] for e in events)
    assert iq.delete(f"/v1/webhooks/{hook['id']}").status_code == 200
    assert iq.get(f"/v1/webhooks/{hook['id']}").status_code == 404
    fraction = httpx.post(f"{sandbox.insightiq_url}/_sandbox/mutate", json={"fraction": 0.1}).json()
    assert len(fraction["user_ids"]) == 30


def test_late_content_appears_in_date_filtered_lists_from_then_on(sandbox, iq):
    account = first_account_with(iq, "/v1/social/contents")
    day = {"from_date": "2026-01-10", "to_date": "2026-01-10", "limit": 100}

    def listed(**params):
        out = []
        for offset in range(0, 100_000, 100):
            page = iq.get("/v1/social/contents", params={**day, **params, "offset": offset}).json()["data"]
            out += page
            if len(page) < 100:
                return out
        raise AssertionError("too many pages")

    before_all, before_account = listed(), listed(account_id=account["id"])
    try:
        late = httpx.post(
            f"{sandbox.insightiq_url}/_sandbox/late-content",
            json={"account_id": account["id"], "published_at": "2026-01-10T10:30:00"},
        )
        assert late.status_code == 200, late.text
        item = late.json()
        assert item["published_at"] == "2026-01-10T10:30:00.000000"
        assert item["account"]["id"] == account["id"] and item["user"] == account["user"]
        for params, before in (({}, before_all), ({"account_id": account["id"]}, before_account)):
            after = listed(**params)
            assert [c for c in after if c["id"] != item["id"]] == before  # nothing else moved
            assert [c["id"] for c in after].count(item["id"]) == 1
            stamps = [c["published_at"] for c in after]
            assert stamps == sorted(stamps)
        other_day = iq.get(
            "/v1/social/contents", params={**day, "from_date": "2026-01-11", "to_date": "2026-01-11"}
        )
        assert item["id"] not in {c["id"] for c in other_day.json()["data"]}
        assert iq.get(f"/v1/social/contents/{item['id']}").json() == item
        assert sandbox.stats("insightiq")["late_items"] == {"contents": 1}

        for body, message in (
            ({"account_id": "nope", "published_at": "2026-01-10T10:30:00"}, "account_id"),
            ({"account_id": account["id"], "published_at": "yesterday"}, "published_at"),
            ({"account_id": account["id"], "published_at": "2999-01-01T00:00:00"}, "in the past"),
            ({"account_id": account["id"]}, "published_at"),
        ):
            bad = httpx.post(f"{sandbox.insightiq_url}/_sandbox/late-content", json=body)
            assert bad.status_code == 400 and message in bad.json()["error"], bad.text
    finally:
        sandbox.reset("insightiq")  # late items are sandbox state: other tests see the generated data only
    assert item["id"] not in {c["id"] for c in listed()}
