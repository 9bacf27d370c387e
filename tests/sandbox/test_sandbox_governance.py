"""The Insider sandbox's Data Governance endpoints (documented rules, limits, error bodies) driven through
the hooks, and the InsightIQ sandbox's creator disconnect / reconnect with signed webhooks."""

from __future__ import annotations

import json

import httpx
import pytest

from creator_sync.hooks.data_governance import ALREADY_GONE, ERASED, InsiderDataGovernanceHook
from creator_sync.hooks.insider import InsiderHook
from creator_sync.webhooks.signature import is_valid
from tests.webhooks.webhook_support import SECRET, Capture

HEADERS = {"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": "1a2b3c4e5d6f"}
PII = ["email", "phone_number", "name", "surname", "gender", "country"]


@pytest.fixture
def hooks(sandbox_env, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    insider, governance = InsiderHook(), InsiderDataGovernanceHook()
    yield insider, governance
    insider.close()
    governance.close()


def _creator(insider: InsiderHook, uuid: str, **identifiers) -> None:
    user = {
        "identifiers": {
            "uuid": uuid,
            "email": f"{uuid}@example.com",
            "phone_number": "+6598765432",
            **identifiers,
        },
        "attributes": {
            "name": "Ann",
            "surname": "Lee",
            "gender": "f",
            "country": "SG",
            "custom": {"score": 3},
        },
        "events": [{"event_name": "content_published", "timestamp": "2026-01-01T00:00:00Z"}],
    }
    assert insider.upsert_batch([user]).accepted == 1


def _stored(sandbox, uuid: str) -> dict:
    users = httpx.get(f"{sandbox.insider_url}/_sandbox/users", params={"limit": 1000}).json()["data"]
    return next(u for u in users if u["identifiers"].get("uuid") == uuid)


def test_anonymize_removes_pii_keeps_uuid_events_and_custom(hooks, sandbox_env):
    insider, governance = hooks
    _creator(insider, "c-1")
    assert governance.anonymize(identifiers={"uuid": "c-1"}).outcome == ERASED
    profile = insider.get_profile(identifiers={"uuid": "c-1"}, attributes=[*PII, "uuid"])
    assert profile.found and set(profile.attributes) == {"uuid", "iid"}
    stored = _stored(sandbox_env, "c-1")
    assert set(stored["identifiers"]) <= {"uuid", "custom"}
    assert stored["attributes"] == {"uuid": "c-1", "custom": {"score": 3}}
    assert len(stored["events"]) == 1
    # no longer found by the erased email; erasing again is no error
    assert not insider.get_profile(identifiers={"email": "c-1@example.com"}, attributes=["uuid"]).found
    assert governance.anonymize(identifiers={"uuid": "c-1"}).outcome == ERASED
    assert governance.check_pii({"uuid": "c-1"}).pii_left == []


def test_lost_answer_after_processing_is_verified_and_not_sent_again(hooks, sandbox_env):
    insider, governance = hooks
    _creator(insider, "c-lost")
    url = sandbox_env.insider_url
    before = httpx.get(f"{url}/_sandbox/governance").json()
    httpx.post(f"{url}/_sandbox/governance", json={"lose_answers": 1}).raise_for_status()
    result = governance.anonymize(identifiers={"uuid": "c-lost"})
    after = httpx.get(f"{url}/_sandbox/governance").json()
    assert (result.outcome, result.verified, result.lost_answers, result.requests) == (ERASED, True, 1, 1)
    assert (
        after["anonymized"] - before["anonymized"] == 1
        and after["answers_lost"] - before["answers_lost"] == 1
    )
    assert governance.check_pii({"uuid": "c-lost"}).pii_left == []


def test_unknown_user_is_404_with_the_documented_body(hooks, sandbox_env):
    _, governance = hooks
    raw = httpx.post(
        f"{sandbox_env.insider_url}/api/user/v1/anonymize",
        json={"identifiers": {"uuid": "nobody"}},
        headers=HEADERS,
    )
    assert (raw.status_code, raw.json()) == (404, {"error": "no such user for these identifiers: no data"})
    assert governance.anonymize(identifiers={"uuid": "nobody"}).outcome == ALREADY_GONE


def test_last_remaining_identifier_is_kept_even_when_pii(hooks, sandbox_env):
    insider, governance = hooks
    assert insider.upsert_batch(
        [{"identifiers": {"email": "only@example.com"}, "attributes": {"name": "O"}}]
    ).accepted
    assert governance.anonymize(identifiers={"email": "only@example.com"}).outcome == ERASED
    profile = insider.get_profile(identifiers={"email": "only@example.com"}, attributes=["email", "name"])
    assert profile.attributes.get("email") == "only@example.com" and "name" not in profile.attributes


def test_anonymize_by_profile_id_and_delete(hooks, sandbox_env):
    insider, governance = hooks
    _creator(insider, "c-2")
    iid = insider.get_profile(identifiers={"uuid": "c-2"}, attributes=["uuid"]).attributes["iid"]
    assert governance.anonymize(insider_id=iid).outcome == ERASED
    assert governance.check_pii(insider_id=iid).pii_left == []
    url = sandbox_env.insider_url
    deleted = httpx.post(f"{url}/api/user/v1/delete", json={"identifiers": {"uuid": "c-2"}}, headers=HEADERS)
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert governance.anonymize(identifiers={"uuid": "c-2"}).outcome == ALREADY_GONE


def test_governance_limit_and_auth(hooks, sandbox_env):
    url = f"{sandbox_env.insider_url}/api/user/v1/anonymize"
    body = {"identifiers": {"uuid": "nobody"}}
    assert httpx.post(url, json=body, headers={**HEADERS, "X-REQUEST-TOKEN": "wrong"}).status_code == 403
    assert httpx.post(url, json={}, headers=HEADERS).status_code == 400
    # every request counts, refused ones included; a long window keeps the three in one window
    sandbox_env.configure("insider", {"limits": {"governance": {"rate": 2, "window": 3600}}})
    sandbox_env.reset("insider")
    try:
        statuses = [httpx.post(url, json=body, headers=HEADERS) for _ in range(3)]
        assert [r.status_code for r in statuses] == [404, 404, 429]
        assert statuses[2].json() == {"error": "rejected: too many requests"}
        assert int(statuses[2].headers["Retry-After"]) >= 1
    finally:
        sandbox_env.configure("insider", {"limits": {"governance": {"rate": 500, "window": 60}}})
    assert sandbox_env.stats("insider")["limits"]["governance"]["rate"] == 500


def test_insightiq_creator_disconnect_and_reconnect_send_signed_webhooks(sandbox_env):
    from creator_sync.hooks.insightiq import InsightIQHook

    capture = Capture()
    iq = InsightIQHook()
    try:
        iq.create_webhook(capture.url, ["ACCOUNTS.DISCONNECTED", "ACCOUNTS.CONNECTED"], name="t")
        user_id = next(iq.iter_records("users"))["id"]
        accounts = [a["id"] for a in iq.iter_records("accounts", user_id=user_id)]
        base = sandbox_env.insightiq_url
        out = httpx.post(f"{base}/_sandbox/creators/{user_id}/disconnect").json()
        assert out["account_ids"] == accounts and out["webhooks"] == len(accounts)
        assert {a["status"] for a in iq.iter_records("accounts", user_id=user_id)} == {"NOT_CONNECTED"}
        deliveries = capture.wait(len(accounts))
        for headers, body in deliveries:
            assert is_valid(body, headers["Webhook-Signatures"], [SECRET])
        events = [json.loads(body) for _, body in deliveries]
        assert {e["event"] for e in events} == {"ACCOUNTS.DISCONNECTED"}
        assert {e["data"]["account_id"] for e in events} == set(accounts)
        assert {e["data"]["user_id"] for e in events} == {user_id}
        httpx.post(f"{base}/_sandbox/creators/{user_id}/connect").raise_for_status()
        assert {a["status"] for a in iq.iter_records("accounts", user_id=user_id)} == {"CONNECTED"}
        events = [json.loads(body) for _, body in capture.wait(2 * len(accounts))[len(accounts) :]]
        assert {e["event"] for e in events} == {"ACCOUNTS.CONNECTED"}
        assert httpx.post(f"{base}/_sandbox/creators/nobody/disconnect").status_code == 404
    finally:
        iq.close()
        capture.close()
