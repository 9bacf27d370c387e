"""Insider unification sandbox against the doc: samples, validation examples, storage semantics, limits."""

from __future__ import annotations

import copy
import json
import uuid

import httpx
import pytest
from sandbox_samples import (
    PROFILE_1,
    PROFILE_2,
    PROFILE_3,
    PROFILE_RESPONSE,
    PURCHASE,
    PURCHASE_ERRORS,
    UPSERT_1,
    UPSERT_2,
    UPSERT_3,
    VALIDATION_EXAMPLES,
)

pytestmark = pytest.mark.slow
UPSERT, PROFILE, DELETE = "/api/user/v1/upsert", "/api/user/v1/profile", "/api/user/v1/attribute/delete"


def ok(count: int) -> dict:
    return {"data": {"successful": {"count": count}, "fail": {}}}


def stored(sandbox, **match) -> dict:
    users = httpx.get(f"{sandbox.insider_url}/_sandbox/users", params={"limit": 100000}).json()["data"]
    found = [u for u in users if all(u["identifiers"].get(k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def fresh(sandbox):
    sandbox.reset("insider")
    yield
    sandbox.configure("insider", {"drop_attributes": []})


def test_doc_upsert_samples(sandbox, insider, fresh):
    assert insider.post(UPSERT, json=UPSERT_1).json() == ok(1)
    assert insider.post(UPSERT, json=UPSERT_2).json() == ok(1)
    assert insider.post(UPSERT, json=UPSERT_3).json() == ok(2)
    user = stored(sandbox, email="sample@useinsider.com")
    assert user["identifiers"]["custom"] == {"user_loyalty_id": "xyz123"}
    assert user["attributes"]["static_segment_id"] == [1, 2]
    assert [e["event_name"] for e in user["events"]] == ["purchase", "account_created"]
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 3 and stats["upsert_requests"] == 3 and stats["events_stored"] == 8


@pytest.mark.parametrize("identifiers,extra", VALIDATION_EXAMPLES)
def test_doc_validation_examples(insider, fresh, identifiers, extra):
    event = copy.deepcopy(PURCHASE)
    del event["event_params"]["event_group_id"], event["event_params"]["unit_sale_price"]
    user = {"events": [event]} | ({"identifiers": identifiers} if identifiers is not None else {})
    response = insider.post(UPSERT, json={"users": [user]})
    assert response.status_code == 200
    assert response.json() == {
        "data": {"successful": {}, "fail": {"count": 1, "errors": {**PURCHASE_ERRORS, **extra}}}
    }


def test_request_level_errors(sandbox, insider):
    assert insider.post(UPSERT, json={"skip_hook": True}).json() == {
        "error": "users must be defined: bad request"
    }
    assert insider.post(UPSERT, json={"users": []}).status_code == 400
    too_many = insider.post(UPSERT, json={"users": [{"identifiers": {"uuid": str(i)}} for i in range(1001)]})
    assert too_many.status_code == 400 and "1,000" in too_many.json()["error"]
    big = {"users": [{"identifiers": {"uuid": "x"}, "attributes": {"custom": {"blob": "x" * 5_000_001}}}]}
    r = insider.post(UPSERT, content=json.dumps(big))
    assert r.status_code == 400
    assert r.json() == {"error": "request body is bigger than maximum allowed size 5,000,000 bytes"}


def test_auth_headers(sandbox):
    url = sandbox.insider_url + UPSERT
    body = {"users": [{"identifiers": {"uuid": "auth-check"}}]}
    before = sandbox.stats("insider")["users_stored"]
    wrong = httpx.post(url, json=body, headers={"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": "nope"})
    assert wrong.status_code == 403 and "error" in wrong.json()
    upper = httpx.post(
        url, json=body, headers={"X-PARTNER-NAME": "MyBrand", "X-REQUEST-TOKEN": "1a2b3c4e5d6f"}
    )
    assert upper.status_code == 400 and "lowercase" in upper.json()["error"]
    other = httpx.post(
        url, json=body, headers={"X-PARTNER-NAME": "otherbrand", "X-REQUEST-TOKEN": "1a2b3c4e5d6f"}
    )
    assert other.status_code == 403
    assert sandbox.stats("insider")["users_stored"] == before
    second_token = httpx.post(
        url, json=body, headers={"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": "1a2b3c4d5e6f"}
    )
    assert second_token.json() == ok(1)


def test_append_versus_not_append(sandbox, insider, fresh):
    def send(values, **flags):
        user = {
            "identifiers": {"email": "a@example.com"},
            "attributes": {"tags": values, "custom": {"colors": values}},
            **flags,
        }
        assert insider.post(UPSERT, json={"users": [user]}).json() == ok(1)
        attrs = stored(sandbox, email="a@example.com")["attributes"]
        return attrs["tags"], attrs["custom"]["colors"]

    assert send(["a"]) == (["a"], ["a"])
    assert send(["b"]) == (["a", "b"], ["a", "b"])  # append is the default
    assert send(["c"], not_append=True) == (["c"], ["c"])
    assert send(["d"], append=False) == (["d"], ["d"])
    assert send(["e"], not_append=True, append=True) == (["d", "e"], ["d", "e"])  # append wins


def test_identifier_match_merges_and_conflict_calls_error_callback(sandbox, insider, fresh, receiver):
    one = {"identifiers": {"email": "one@example.com"}, "attributes": {"name": "One"}}
    two = {"identifiers": {"phone_number": "+14155550123"}, "attributes": {"surname": "Two"}}
    assert insider.post(UPSERT, json={"users": [one, two]}).json() == ok(2)
    merged = {"identifiers": {"email": "one@example.com", "uuid": "u-1"}, "attributes": {"age": 3}}
    assert insider.post(UPSERT, json={"users": [merged]}).json() == ok(1)
    user = stored(sandbox, email="one@example.com")
    assert (
        user["attributes"]["name"] == "One" and user["attributes"]["age"] == 3 and user["identifiers"]["uuid"]
    )
    clash = {
        "identifiers": {"email": "one@example.com", "phone_number": "+14155550123"},
        "attributes": {"x": 1},
    }
    body = {
        "error_callback_endpoint": receiver.url + "/cb",
        "users": [clash, {"identifiers": {"uuid": "fine"}}],
    }
    result = insider.post(UPSERT, json=body).json()["data"]
    assert result["successful"] == {"count": 1} and result["fail"]["count"] == 1
    assert list(result["fail"]["errors"]) == ["users.0.identifiers.unification"]
    receiver.wait(1)
    assert receiver.json(0)["users"] == [clash]
    assert "x" not in stored(sandbox, email="one@example.com")["attributes"]
    assert sandbox.stats("insider")["users_stored"] == 3


def test_events_duplicates_and_skip_hook(sandbox, insider, fresh):
    user = {"identifiers": {"uuid": "ev-1"}, "events": [PURCHASE]}
    insider.post(UPSERT, json={"skip_hook": True, "users": [user]})
    insider.post(UPSERT, json={"users": [user]})  # same event again -> appended, counted as duplicate
    shifted = copy.deepcopy(user)
    shifted["events"][0]["timestamp"] = "2021-01-11T00:35:20+03:00"  # the same instant in another offset
    insider.post(UPSERT, json={"users": [shifted]})
    other = copy.deepcopy(user)
    other["events"][0]["timestamp"] = "2021-01-10T21:35:21Z"
    insider.post(UPSERT, json={"users": [other]})
    stats = sandbox.stats("insider")
    assert stats["events_stored"] == 4 and stats["duplicate_events"] == 2
    assert stats["events_by_skip_hook"] == {"true": 1, "false": 3}
    events = stored(sandbox, uuid="ev-1")["events"]
    assert [e["skip_hook"] for e in events] == [True, False, False, False]


def test_doc_profile_samples_and_quota(sandbox, insider, fresh):
    events = [
        ("email_click", "2021-01-06T23:34:09Z", {"campaign_id": 1456}),
        ("email_click", "2021-01-01T12:56:21Z", {"campaign_id": 1245}),
        ("item_added_to_cart", "2021-01-04T15:04:34Z", {"product_id": "3254634", "name": "Blue Shirt"}),
        ("journey_entered", "2021-01-02T09:35:46Z", {"journey_id": 12}),
        ("email_click", "2019-01-01T00:00:00Z", {"campaign_id": 1}),
    ]  # outside the window
    user = {
        "identifiers": {"email": "example@useinsider.com"},
        "attributes": {"name": "John", "surname": "Doe", "custom": {"member_code": "M-1"}},
        "events": [{"event_name": n, "timestamp": t, "event_params": p} for n, t, p in events],
    }
    assert insider.post(UPSERT, json={"users": [user]}).json() == ok(1)
    first = insider.post(PROFILE, json=PROFILE_1)
    assert first.status_code == 200
    body = first.json()
    iid = body["attributes"].pop("iid")
    expected = copy.deepcopy(PROFILE_RESPONSE)
    del expected["attributes"]["iid"]
    assert iid and body == expected
    second = insider.post(PROFILE, json=PROFILE_2).json()
    assert second["attributes"]["c_member_code"] == "M-1" and second["quota"]["used"] == 5.0
    assert insider.post(UPSERT, json=UPSERT_2).json() == ok(1)
    third = insider.post(PROFILE, json=PROFILE_3).json()
    assert third["attributes"]["iid"] == "sampleinsiderid" and third["events"]["email_click"] == []
    missing = insider.post(PROFILE, json={**PROFILE_1, "identifiers": {"email": "nobody@example.com"}})
    assert missing.status_code == 404
    assert missing.json() == {"error": "no such user for these identifiers: no data"}
    assert sandbox.stats("insider")["quota_used"] == 10.0
    sandbox.configure("insider", {"limits": {"profile_quota": {"rate": 12}}})
    try:
        assert insider.post(PROFILE, json=PROFILE_1).status_code == 429  # 10 + 2.5 > 12
        cheap = insider.post(PROFILE, json={"insider_id": "sampleinsiderid", "attributes": ["age"]})
        assert cheap.status_code == 200  # 10 + 1 <= 12
        rejected = insider.post(PROFILE, json=PROFILE_1)
        assert rejected.status_code == 429 and rejected.json() == {"error": "rejected: too many requests"}
    finally:
        sandbox.configure("insider", {"limits": {"profile_quota": {"rate": 1000}}})


def test_upsert_rate_limit_shared_with_attribute_delete(sandbox, insider, fresh):
    insider.post(
        UPSERT, json={"users": [{"identifiers": {"uuid": "rl"}, "attributes": {"a": 1, "b": [1, 2]}}]}
    )
    sandbox.configure("insider", {"limits": {"upsert": {"rate": 3, "window": 3600}}})
    try:
        body = {"users": [{"identifiers": {"uuid": "rl"}, "whole": ["a"], "partial": {"b": [1]}}]}
        assert insider.post(DELETE, json=body).json() == ok(1)
        assert stored(sandbox, uuid="rl")["attributes"] == {"uuid": "rl", "b": [2]}
        codes = [
            insider.post(UPSERT, json={"users": [{"identifiers": {"uuid": "rl"}}]}).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]  # the window was re-anchored by the config change: delete + 2 upserts
        limited = insider.post(DELETE, json=body)
        assert limited.status_code == 429 and limited.json() == {"error": "rejected: too many requests"}
        assert int(limited.headers["Retry-After"]) >= 1
        stats = sandbox.stats("insider")
        assert stats["max_requests_in_window"]["upsert"] == 3 and stats["windows_over_limit"] == 0
    finally:
        sandbox.configure("insider", {"limits": {"upsert": {"rate": 25000, "window": 60}}})


def test_drop_attributes_config_loses_data_silently(sandbox, insider, fresh):
    sandbox.configure("insider", {"drop_attributes": ["name"]})
    user = {"identifiers": {"uuid": str(uuid.uuid4())}, "attributes": {"name": "Jane", "surname": "Doe"}}
    assert insider.post(UPSERT, json={"users": [user]}).json() == ok(1)
    profile = insider.post(
        PROFILE, json={"identifiers": user["identifiers"], "attributes": ["name", "surname"]}
    )
    assert "name" not in profile.json()["attributes"] and profile.json()["attributes"]["surname"] == "Doe"


def test_reset_clears_state(sandbox, insider):
    insider.post(UPSERT, json={"users": [{"identifiers": {"uuid": "reset-me"}}]})
    sandbox.reset("insider")
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 0 and stats["upsert_requests"] == 0 and stats["requests_by_status"] == {}


def test_lookup_by_uuid_returns_stored_users_and_none_for_unknown(sandbox, insider, fresh):
    users = [{"identifiers": {"uuid": f"look-{i}"}, "attributes": {"name": f"N{i}"}} for i in range(3)]
    assert insider.post(UPSERT, json={"users": users}).json() == ok(3)
    found = sandbox.insider_lookup(["look-2", "look-0", "nobody"])
    assert list(found) == ["look-2", "look-0", "nobody"]
    assert found["look-2"]["attributes"]["name"] == "N2" and found["look-0"]["attributes"]["name"] == "N0"
    assert found["nobody"] is None
    assert {u["identifiers"]["uuid"] for u in sandbox.insider_users(page=2)} == {"look-0", "look-1", "look-2"}
    bad = httpx.post(f"{sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": "look-0"})
    assert bad.status_code == 400 and "uuids" in bad.json()["error"]
