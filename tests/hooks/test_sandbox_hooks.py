"""Acceptance checks over real HTTP on loopback against the vendor sandboxes (slow)."""

from __future__ import annotations

import time

import httpx
import pytest

from creator_sync.hooks.insider import MAX_REQUEST_BYTES, InsiderHook
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.hooks.web_push import InsiderWebPushHook, WebPushTitleExistsError
from creator_sync.http.errors import VendorAuthError
from creator_sync.retry import VENDOR_RETRY_POLICY
from devtools.insider_load import upsert_all

pytestmark = pytest.mark.slow


def test_429_with_retry_after_2_waits_then_succeeds(sandbox_env):
    sandbox_env.configure("insightiq", {"limits": {"requests": {"rate": 1, "window": 2}}})
    try:
        hook = InsightIQHook()
        hook.client  # noqa: B018
        # spend the sandbox's budget early in a 2 s window so the next call gets Retry-After: 2
        while time.time() % 2 > 0.3:
            time.sleep(0.02)
        httpx.get(
            f"{sandbox_env.insightiq_url}/v1/work-platforms",
            auth=("sandbox-client-id", "sandbox-client-secret"),
        ).raise_for_status()
        start = time.monotonic()
        platforms = list(hook.iter_records("work_platforms"))
        waited = time.monotonic() - start
        assert platforms
        assert hook.stats["rate_limited_429"] == 1 and hook.stats["retries"] == 1
        assert waited >= 2.0  # the sandbox sent Retry-After: 2 (ceil of the >1.6 s left in its window)
        assert sandbox_env.stats("insightiq")["requests_by_status"].get("429") == 1
    finally:
        sandbox_env.configure("insightiq", {"limits": {"requests": {"rate": 10, "window": 1}}})


def test_401_fails_at_once_naming_the_connection(sandbox_env, conn_env):
    from devtools.connections import sandbox_hosts

    conn_env(sandbox_hosts(sandbox_env), insightiq_default={"password": "wrong-secret-value"})
    hook = InsightIQHook()
    with pytest.raises(VendorAuthError) as info:
        list(hook.iter_records("contents"))
    assert hook.stats["requests"] == 1 and hook.stats["retries"] == 0  # failed at once, no retry
    text = str(info.value)
    assert "InsightIQ GET /v1/social/contents failed: HTTP 401" in text
    assert "Authentication failed" in text
    assert "fix the login/password of Airflow connection 'insightiq_default'" in text
    assert "wrong-secret-value" not in text
    assert hook.stats["requests"] == 1
    assert VENDOR_RETRY_POLICY.evaluate(info.value, 1, 4).action.value == "fail"
    ok, message = hook.test_connection()
    assert not ok and "'insightiq_default'" in message


def test_upsert_2500_users_is_3_requests_and_an_oversized_user_is_rejected_locally(sandbox_env):
    users = [
        {"identifiers": {"uuid": f"creator-{i}"}, "attributes": {"name": f"Creator {i}", "email_optin": True}}
        for i in range(2500)
    ]
    huge = {"identifiers": {"uuid": "huge"}, "attributes": {"custom": {"bio": "x" * MAX_REQUEST_BYTES}}}
    users.insert(1234, huge)
    hook = InsiderHook()
    report, letters = upsert_all(hook, users, skip_hook=True)
    assert report.requests == 3 and report.users_sent == 2500
    [rejected] = letters
    assert (rejected.user_key, rejected.reason) == ("huge", "user_too_large")
    assert (
        "user #1234" in rejected.detail and "over Insider's 5,000,000-byte request limit" in rejected.detail
    )
    stats = sandbox_env.stats("insider")
    assert stats["upsert_requests"] == 3 and stats["users_stored"] == 2500
    assert stats["requests_by_status"] == {"200": 3}


def test_upsert_reports_per_user_validation_failures(sandbox_env):
    users = [
        {"identifiers": {"uuid": "ok-1"}},
        {"identifiers": {"email": "not-an-email"}},
        {"identifiers": {"phone_number": "12345"}},
        {"identifiers": {"uuid": "ok-2"}},
    ]
    report, letters = upsert_all(InsiderHook(), users)
    assert report.requests == 1 and report.users_sent == 2
    by_user = {d.user_key: d for d in letters}
    assert set(by_user) == {"not-an-email", "12345"} and {d.reason for d in letters} == {"vendor_rejected"}
    assert "email" in by_user["not-an-email"].detail


def test_profile_found_missing_and_quota(sandbox_env):
    hook = InsiderHook()
    upsert_all(hook, [{"identifiers": {"uuid": "p-1"}, "attributes": {"name": "Pat"}}])
    found = hook.get_profile(identifiers={"uuid": "p-1"}, attributes=["name"])
    assert found.found and found.quota and found.quota["cost"] > 0
    missing = hook.get_profile(identifiers={"uuid": "nobody"}, attributes=["name"])
    assert not missing.found and "no such user" in missing.message
    assert hook.test_connection()[0]


def test_web_push_create_and_existing_title(sandbox_env):
    hook = InsiderWebPushHook()
    title = f"creator-sync test {time.time_ns()}"
    assert isinstance(hook.create_single_push(title, "en_US"), int)
    with pytest.raises(WebPushTitleExistsError, match="already exists"):
        hook.create_single_push(title, "en_US")
    assert sandbox_env.stats("web_push")["requests_by_status"] == {"201": 1, "400": 1}


def test_transient_faults_are_absorbed_by_the_client(sandbox_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path}")
    sandbox_env.configure("insightiq", {"fault_5xx": 0.2, "fault_drop": 0.1, "fault_malformed": 0.1})
    try:
        hook = InsightIQHook()
        accounts = list(hook.iter_records("accounts"))
        assert len(accounts) == sandbox_env.stats("insightiq")["accounts"]
        assert hook.stats["retries"] > 0
    finally:
        sandbox_env.configure("insightiq", {"fault_5xx": 0, "fault_drop": 0, "fault_malformed": 0})


def test_test_connection_for_every_hook(sandbox_env, conn_env):
    from devtools.connections import sandbox_hosts

    for hook_cls in (InsightIQHook, InsiderHook, InsiderWebPushHook):
        ok, message = hook_cls().test_connection()
        assert ok, message
    conn_env(
        sandbox_hosts(sandbox_env),
        insider_default={"password": "bad-token-1"},
        insider_web_push_default={"password": "bad-key-123"},
    )
    for hook_cls, conn_id, secret in (
        (InsiderHook, "insider_default", "bad-token-1"),
        (InsiderWebPushHook, "insider_web_push_default", "bad-key-123"),
    ):
        ok, message = hook_cls().test_connection()
        assert not ok and f"'{conn_id}'" in message and secret not in message
