"""What every creator-sync hook promises: its *_conn_id keyword, timeout/retries from the connection's
extras, non-idempotent calls never retried by the client, and creates settled by a look-up after a lost
answer (never by a blind second create)."""

from __future__ import annotations

import json

import httpx
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insider import InsiderHook
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.hooks.web_push import (
    InsiderWebPushHook,
    WebPushCreateUnconfirmedError,
    WebPushTitleExistsError,
)
from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.http.errors import AmbiguousOutcomeError, VendorServerError
from creator_sync.http.limiter import UnlimitedLimiter

FAST = RetrySettings(max_attempts=4, backoff_initial=0, jitter=0)
LIMITERS = {
    name: UnlimitedLimiter()
    for name in ("insightiq_api", "insider_upsert", "insider_profile", "insider_web_push")
}


class Vendor:
    """MockTransport handler: ``routes[(method, path)]`` answers (callable, or a list consumed in order)."""

    def __init__(self, routes):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"error": {"message": "no such route"}})
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.url.path) == (method, path))


def make(cls, vendor: Vendor, **kwargs):
    return cls(transport=httpx.MockTransport(vendor), limiters=LIMITERS, retry=FAST, **kwargs)


LOST = httpx.ReadTimeout("read timed out")  # the request went out; its answer never came back


# -- connection id keyword ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "keyword"),
    [
        (InsightIQHook, "insightiq_conn_id"),
        (InsiderHook, "insider_conn_id"),
        (InsiderWebPushHook, "insider_web_push_conn_id"),
    ],
)
def test_hooks_take_their_conn_id_keyword_like_airflow_provider_hooks(cls, keyword):
    hook = cls(**{keyword: "my_conn"})
    assert hook.conn_id == getattr(hook, keyword) == "my_conn"
    assert cls().conn_id == cls.default_conn_name
    assert cls("positional").conn_id == "positional"
    with pytest.raises(CreatorSyncConfigError, match="two connection ids"):
        cls("one", **{keyword: "other"})


# -- timeout / retries from connection extras --------------------------------------------------------------


def test_timeout_and_retries_come_from_the_connection_extras(conn_env):
    conn_env(insightiq_default={"extra": {"environment": "sandbox", "timeout": 7.5, "retries": 2}})
    vendor = Vendor({("GET", "/v1/work-platforms"): httpx.Response(502, json={})})
    hook = InsightIQHook(transport=httpx.MockTransport(vendor), limiters=LIMITERS)
    assert hook.client._http.timeout == httpx.Timeout(7.5)
    hook.client._sleep = lambda s: None
    with pytest.raises(VendorServerError):
        hook.client.get("/v1/work-platforms")
    assert vendor.count("GET", "/v1/work-platforms") == 3  # first attempt + 2 retries


def test_hook_arguments_win_over_the_extras(conn_env):
    conn_env(insider_default={"extra": {"timeout": 7.5, "retries": 2}})
    hook = InsiderHook(timeout=3.0, retry=RetrySettings(max_attempts=9))
    assert hook.client._http.timeout == httpx.Timeout(3.0)
    assert hook.client.retry.max_attempts == 9


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timeout": "soon"}, "'timeout' must be a number of seconds"),
        ({"timeout": 0}, "'timeout' must be a number of seconds"),
        ({"retries": -1}, "'retries' must be a whole number"),
        ({"retries": 1.5}, "'retries' must be a whole number"),
        ({"retries": True}, "'retries' must be a whole number"),
    ],
)
def test_bad_extras_are_a_clear_config_error(conn_env, extra, message):
    conn_env(insider_web_push_default={"extra": extra})
    with pytest.raises(CreatorSyncConfigError, match=message) as info:
        InsiderWebPushHook().get_conn()
    assert "insider_web_push_default" in str(info.value) and "Extra field" in str(info.value)


# -- non-idempotent calls are never retried by the client ----------------------------------------------------


@pytest.fixture
def idempotence(monkeypatch):
    """Records (method, path, idempotent) of every VendorClient.request."""
    seen: list[tuple[str, str, bool]] = []
    original = VendorClient.request

    def spy(self, method, path, **kwargs):
        seen.append((method.upper(), path, kwargs.get("idempotent", True)))
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(VendorClient, "request", spy)
    return seen


NON_IDEMPOTENT = [
    ("insider upsert", "POST", "/api/user/v1/upsert"),
    ("insider attribute delete", "POST", "/api/user/v1/attribute/delete"),
    ("web push create", "POST", "/v1/single"),
    ("insightiq user create", "POST", "/v1/users"),
    ("insightiq sdk token create", "POST", "/v1/sdk-tokens"),
    ("insightiq webhook create", "POST", "/v1/webhooks"),
]


def _call(name: str, vendor: Vendor):
    if name == "insider upsert":
        return make(InsiderHook, vendor).upsert_batch([{"identifiers": {"uuid": "u1"}}])
    if name == "insider attribute delete":
        return make(InsiderHook, vendor).delete_attributes(
            [{"identifiers": {"uuid": "u1"}, "whole": ["age"]}]
        )
    if name == "web push create":
        return make(InsiderWebPushHook, vendor).create_single_push("Launch", "en_US")
    if name == "insightiq user create":
        return make(InsightIQHook, vendor).create_user("Ada", "ext-1")
    if name == "insightiq sdk token create":
        return make(InsightIQHook, vendor).create_sdk_token("u1", ["IDENTITY"])
    return make(InsightIQHook, vendor).create_webhook("https://x.example/hook", ["PROFILES.ADDED"])


@pytest.mark.parametrize(("name", "method", "path"), NON_IDEMPOTENT, ids=[n for n, _, _ in NON_IDEMPOTENT])
def test_non_idempotent_calls_go_out_once_when_the_answer_is_lost(conn_env, idempotence, name, method, path):
    vendor = Vendor({(method, path): LOST, ("GET", "/v1/webhooks"): httpx.Response(200, json={"data": []})})
    with pytest.raises(AmbiguousOutcomeError):
        _call(name, vendor)
    assert (method, path, False) in idempotence
    assert all(not flag for m, p, flag in idempotence if (m, p) == (method, path))
    # one request per call: the client never re-sent it (the web push hook re-sends the create once on
    # purpose, see test_web_push_lost_answer_*; with a retrying client this would be 4 or 8)
    assert vendor.count(method, path) == (2 if name == "web push create" else 1)


# -- look up before creating again ---------------------------------------------------------------------


def test_insightiq_user_create_with_a_lost_answer_returns_the_user_it_finds(conn_env):
    vendor = Vendor(
        {
            ("POST", "/v1/users"): LOST,
            ("GET", "/v1/users/external_id/ext-1"): httpx.Response(200, json={"id": "u-9"}),
        }
    )
    assert make(InsightIQHook, vendor).create_user("Ada", "ext-1") == {"id": "u-9"}
    assert vendor.count("POST", "/v1/users") == 1


def test_insightiq_user_create_that_did_not_arrive_raises_for_an_airflow_retry(conn_env):
    vendor = Vendor({("POST", "/v1/users"): httpx.Response(502, json={})})  # 404 for the look-up
    with pytest.raises(AmbiguousOutcomeError):
        make(InsightIQHook, vendor).create_user("Ada", "ext-1")
    assert vendor.count("POST", "/v1/users") == 1
    assert vendor.count("GET", "/v1/users/external_id/ext-1") == 1


def test_ensure_user_looks_up_first_and_creates_only_when_missing(conn_env):
    found = Vendor({("GET", "/v1/users/external_id/e"): httpx.Response(200, json={"id": "u-1"})})
    assert make(InsightIQHook, found).ensure_user("Ada", "e") == ({"id": "u-1"}, False)
    assert found.count("POST", "/v1/users") == 0
    missing = Vendor({("POST", "/v1/users"): httpx.Response(200, json={"id": "u-2"})})
    assert make(InsightIQHook, missing).ensure_user("Ada", "e") == ({"id": "u-2"}, True)
    body = json.loads(missing.requests[-1].content)
    assert body == {"name": "Ada", "external_id": "e"}


def test_webhook_create_with_a_lost_answer_returns_the_webhook_registered_at_the_url(conn_env):
    ours = {"id": "w-1", "url": "https://x.example/hook", "events": ["PROFILES.ADDED"]}
    other = {"id": "w-0", "url": "https://other.example/", "events": []}
    vendor = Vendor(
        {
            ("POST", "/v1/webhooks"): httpx.Response(504, json={}),
            ("GET", "/v1/webhooks"): httpx.Response(200, json={"data": [other, ours]}),
        }
    )
    hook = make(InsightIQHook, vendor)
    assert hook.create_webhook("https://x.example/hook", ["PROFILES.ADDED"]) == ours
    assert vendor.count("POST", "/v1/webhooks") == 1


def test_web_push_lost_answer_then_title_taken_is_reported_as_created_but_unconfirmed(conn_env):
    vendor = Vendor({("POST", "/v1/single"): [LOST, httpx.Response(400, json={"message": "title exists"})]})
    with pytest.raises(WebPushCreateUnconfirmedError, match="was created") as info:
        make(InsiderWebPushHook, vendor).create_single_push("Launch", "en_US")
    assert "InOne Web Push listing" in str(info.value)
    assert vendor.count("POST", "/v1/single") == 2


def test_web_push_lost_answer_then_created_returns_the_new_id(conn_env):
    vendor = Vendor(
        {("POST", "/v1/single"): [httpx.Response(502, json={}), httpx.Response(201, json={"campaign_id": 5})]}
    )
    assert make(InsiderWebPushHook, vendor).create_single_push("Launch", "en_US") == 5
    assert vendor.count("POST", "/v1/single") == 2


def test_web_push_title_taken_on_a_clean_answer_is_not_resent(conn_env):
    vendor = Vendor({("POST", "/v1/single"): httpx.Response(400, json={"message": "title exists"})})
    with pytest.raises(WebPushTitleExistsError) as info:
        make(InsiderWebPushHook, vendor).create_single_push("Launch", "en_US")
    assert not isinstance(info.value, WebPushCreateUnconfirmedError)
    assert vendor.count("POST", "/v1/single") == 1


def test_insightiq_keeps_the_resource_table_as_the_one_endpoint_description():
    """List/get endpoints are table rows read through iter_records/get_record, not one method each."""
    restated = [
        name for name in dir(InsightIQHook) if name.startswith(("list_", "get_content", "get_income"))
    ]
    assert restated == []
