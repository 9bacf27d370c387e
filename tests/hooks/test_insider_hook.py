"""InsiderHook: batch planning by users and bytes, per-user results, profile quota; WebPush hook."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insider import (
    MAX_REQUEST_BYTES,
    InsiderHook,
    build_upsert_body,
    parse_upsert_errors,
)
from creator_sync.hooks.web_push import InsiderWebPushHook, WebPushTitleExistsError
from creator_sync.http.client import RetrySettings
from creator_sync.http.errors import VendorAuthError
from creator_sync.http.limiter import SlidingWindowLimiter, UnlimitedLimiter
from creator_sync.retry import VENDOR_RETRY_POLICY
from devtools.insider_load import upsert_all

FAIL_BODY = {
    "data": {
        "successful": {},
        "fail": {
            "count": 2,
            "errors": {
                "users.3.identifiers.*.regexp(^.+@.+\\..+$)": ["not a valid email address: sample"],
                "users.3.events.0.event_params.*.required": ["event_group_id parameter is required"],
                "users.7.identifiers.*.regexp(^\\+[1-9]\\d{6,14}$)": [
                    "user has an invalid phone number: 12345"
                ],
            },
        },
    }
}


class Recorder:
    def __init__(self, respond=None):
        self.requests: list[httpx.Request] = []
        self.respond = respond or (
            lambda req: httpx.Response(200, json={"data": {"successful": {}, "fail": {}}})
        )

    def __call__(self, request):
        self.requests.append(request)
        return self.respond(request)


def insider(rec, **limiters) -> InsiderHook:
    return InsiderHook(
        transport=httpx.MockTransport(rec),
        limiters=limiters or {"insider_upsert": UnlimitedLimiter(), "insider_profile": UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
    )


def users(n, start=0):
    return [
        {"identifiers": {"uuid": f"u-{i}"}, "attributes": {"name": f"N{i}"}} for i in range(start, start + n)
    ]


def test_partner_name_is_lowercased_and_token_sent(conn_env):
    conn_env(insider_default={"login": "MyBrand"})
    rec = Recorder()
    insider(rec).upsert_batch(users(1), skip_hook=True)
    req = rec.requests[0]
    assert req.headers["x-partner-name"] == "mybrand"
    assert req.headers["x-request-token"] == "1a2b3c4e5d6f"
    assert req.url.path == "/api/user/v1/upsert"
    assert json.loads(req.content)["skip_hook"] is True


def test_2500_users_plan_into_three_requests_and_go_out_as_three(conn_env):
    rec = Recorder()
    h = insider(rec)
    batches = list(h.plan_batches(users(2500)))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    report, letters = upsert_all(h, users(2500))
    assert report.requests == 3 and len(rec.requests) == 3
    assert report.users_sent == 2500 and not letters
    assert [len(json.loads(r.content)["users"]) for r in rec.requests] == [1000, 1000, 500]


def test_batches_respect_the_byte_limit_and_sizes_are_exact(conn_env):
    h = insider(Recorder())
    big = [
        {"identifiers": {"uuid": f"u-{i}"}, "attributes": {"custom": {"blob": "x" * 900}}} for i in range(50)
    ]
    batches = list(h.plan_batches(big, max_bytes=10_000))
    assert sum(len(b) for b in batches) == 50
    for b in batches:
        body = build_upsert_body(b.encoded, skip_hook=False)
        assert len(body) == b.size_bytes <= 10_000
        assert json.loads(body)["users"] == b.users
    # packing is tight: adding the next user's bytes would have crossed the limit
    assert all(b.size_bytes + len(nxt.encoded[0]) + 1 > 10_000 for b, nxt in itertools.pairwise(batches))


def test_a_user_over_5mb_alone_is_rejected_locally_and_the_rest_are_sent(conn_env):
    rec = Recorder()
    h = insider(rec)
    huge = {"identifiers": {"uuid": "huge"}, "attributes": {"custom": {"blob": "x" * MAX_REQUEST_BYTES}}}
    report, letters = upsert_all(h, [*users(10), huge, *users(5, start=10)])
    [rej] = letters
    assert (rej.user_key, rej.reason) == ("huge", "user_too_large")
    assert (
        "user #10" in rej.detail and "5,000,000-byte request limit" in rej.detail and "Not sent" in rej.detail
    )
    assert report.requests == 1 and report.users_sent == 15
    sent = json.loads(rec.requests[0].content)["users"]
    assert [u["identifiers"]["uuid"] for u in sent] == [f"u-{i}" for i in range(15)]


def test_per_user_failures_are_parsed_from_the_200_body(conn_env):
    rec = Recorder(lambda req: httpx.Response(200, json=FAIL_BODY))
    result = insider(rec).upsert_batch(users(10), skip_hook=False)
    assert sorted(result.failed) == [3, 7]
    assert len(result.failed[3]) == 2 and "not a valid email address" in result.failed[3][0]
    assert result.accepted == 8 and result.accepted_indices == [0, 1, 2, 4, 5, 6, 8, 9]
    assert result.fail_count == 2 and not result.unattributed_errors


def test_failures_map_back_to_input_positions_across_batches(conn_env):
    rec = Recorder(lambda req: httpx.Response(200, json=FAIL_BODY))
    report, letters = upsert_all(insider(rec), users(1500))
    assert sorted(d.user_key for d in letters) == ["u-1003", "u-1007", "u-3", "u-7"]
    assert {d.reason for d in letters} == {"vendor_rejected"}
    assert next(d for d in letters if d.user_key == "u-1003").payload["identifiers"]["uuid"] == "u-1003"
    assert report.users_sent == 1496


def test_unattributed_errors_are_kept():
    result = parse_upsert_errors({"data": {"fail": {"count": 1, "errors": {"payload.x": ["bad"]}}}}, 3)
    assert result.failed == {} and result.unattributed_errors == {"payload.x": ["bad"]}


def test_upsert_batch_refuses_oversized_input(conn_env):
    h = insider(Recorder())
    with pytest.raises(CreatorSyncConfigError, match="limit is 1000"):
        h.upsert_batch(users(1001), skip_hook=False)


def test_profile_found_not_found_and_quota_correction(conn_env):
    def respond(req):
        body = json.loads(req.content)
        if body["identifiers"]["uuid"] == "missing":
            return httpx.Response(404, json={"error": "no such user for these identifiers: no data"})
        return httpx.Response(
            200,
            json={
                "attributes": {"email": "a@b.co"},
                "events": {},
                "quota": {"cost": 2.5, "used": 2.5, "total": 1000},
            },
        )

    profile_limiter = SlidingWindowLimiter(500, 60, pace=False)
    h = insider(Recorder(respond), insider_upsert=UnlimitedLimiter(), insider_profile=profile_limiter)
    found = h.get_profile(identifiers={"uuid": "u-1"}, attributes=["email"])
    assert found.found and found.attributes == {"email": "a@b.co"} and found.quota["cost"] == 2.5
    assert profile_limiter.sends_in_window() == pytest.approx(2.5)  # estimate 5 corrected to 2.5
    assert h.profile_cost_estimate == 2.5  # next reservation uses the last seen cost
    missing = h.get_profile(identifiers={"uuid": "missing"}, attributes=["email"])
    assert not missing.found and "no such user" in missing.message


def test_delete_attributes_shares_the_upsert_budget(conn_env):
    upsert_limiter = SlidingWindowLimiter(100, 60, pace=False)
    rec = Recorder(lambda req: httpx.Response(200, json={"data": {}}))
    h = insider(rec, insider_upsert=upsert_limiter, insider_profile=UnlimitedLimiter())
    h.delete_attributes([{"identifiers": {"uuid": "u"}, "whole": ["name"]}])
    h.upsert_batch(users(1), skip_hook=False)
    assert rec.requests[0].url.path == "/api/user/v1/attribute/delete"
    assert upsert_limiter.stats.acquired == 2


def test_insider_403_names_the_connection_and_fails_without_retry(conn_env):
    rec = Recorder(lambda req: httpx.Response(403, json={"error": "forbidden: bad token"}))
    with pytest.raises(VendorAuthError) as info:
        insider(rec).upsert_batch(users(1), skip_hook=False)
    assert "'insider_default'" in str(info.value) and "1a2b3c4e5d6f" not in str(info.value)
    assert len(rec.requests) == 1
    assert VENDOR_RETRY_POLICY.evaluate(info.value, 1, 4).action.value == "fail"


def web_push(rec) -> InsiderWebPushHook:
    return InsiderWebPushHook(
        transport=httpx.MockTransport(rec),
        limiters={"insider_web_push": UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
    )


def test_web_push_creates_a_campaign_with_bearer_and_partner_id(conn_env):
    rec = Recorder(lambda req: httpx.Response(201, json={"success": True, "campaign_id": 25696}))
    assert web_push(rec).create_single_push("Hello", "en_US", is_all=True) == 25696
    req = rec.requests[0]
    assert req.headers["authorization"] == "Bearer 1a2b3c4d5e6f" and req.url.path == "/v1/single"
    assert json.loads(req.content) == {
        "partner_id": "100XXXXX",
        "title": "Hello",
        "language": "en_US",
        "is_all": True,
    }


def test_web_push_existing_title_is_a_specific_non_retryable_error(conn_env):
    rec = Recorder(
        lambda req: httpx.Response(400, json={"message": "a campaign with the title 'Hello' already exists"})
    )
    with pytest.raises(WebPushTitleExistsError) as info:
        web_push(rec).create_single_push("Hello", "en_US")
    assert "already exists" in str(info.value) and "retrying will not help" in str(info.value)
    assert len(rec.requests) == 1
    assert VENDOR_RETRY_POLICY.evaluate(info.value, 1, 4).action.value == "fail"


def test_web_push_title_is_validated_locally(conn_env):
    with pytest.raises(CreatorSyncConfigError):
        web_push(Recorder()).create_single_push("x" * 101, "en_US")
