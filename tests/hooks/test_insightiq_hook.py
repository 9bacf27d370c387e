"""InsightIQHook over MockTransport: connection handling, the resource table, the named calls."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insightiq import RESOURCES, InsightIQHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.limiter import UnlimitedLimiter


class Recorder:
    def __init__(self, respond=None):
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda req: httpx.Response(200, json={"data": [], "metadata": {}}))

    def __call__(self, request):
        self.requests.append(request)
        return self.respond(request)


def hook(rec, conn_id="insightiq_default") -> InsightIQHook:
    return InsightIQHook(
        conn_id,
        transport=httpx.MockTransport(rec),
        limiters={"insightiq_api": UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
    )


def test_connection_fields_base_url_and_basic_auth(conn_env):
    rec = Recorder()
    h = hook(rec)
    assert (h.conn_name_attr, h.default_conn_name, h.conn_type) == (
        "insightiq_conn_id",
        "insightiq_default",
        "insightiq",
    )
    list(h.iter_records("users"))
    req = rec.requests[0]
    assert str(req.url).startswith("http://127.0.0.1:8901/v1/users?")
    user, _, pwd = base64.b64decode(req.headers["authorization"].split()[1]).decode().partition(":")
    assert (user, pwd) == ("sandbox-client-id", "sandbox-client-secret")
    assert "sandbox-client-secret" not in repr(h) + repr(h.client)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [("sandbox", "https://api.sandbox.insightiq.ai"), ("production", "https://api.insightiq.ai")],
)
def test_empty_host_uses_the_documented_host_for_the_environment(conn_env, environment, expected):
    conn_env(insightiq_default={"host": "", "extra": {"environment": environment}})
    assert hook(Recorder()).client.base_url == expected


def test_resource_table_covers_the_documented_list_endpoints():
    assert RESOURCES["contents"].path == "/v1/social/contents"
    assert (RESOURCES["contents"].from_param, RESOURCES["contents"].account_required) == ("from_date", False)
    tx = RESOURCES["social_transactions"]
    assert (tx.path, tx.from_param, tx.to_param, tx.account_required) == (
        "/v1/social/income/transactions",
        "transaction_from_date",
        "transaction_to_date",
        True,
    )
    assert RESOURCES["social_payouts"].from_param == "payout_from_date"
    assert RESOURCES["commerce_balances"].from_param == "balance_from_date"
    assert RESOURCES["comments"].account_required


@pytest.mark.parametrize(
    ("resource", "from_key", "to_key"),
    [
        ("contents", "from_date", "to_date"),
        ("content_groups", "from_date", "to_date"),
        ("comments", "from_date", "to_date"),
        ("social_transactions", "transaction_from_date", "transaction_to_date"),
        ("social_payouts", "payout_from_date", "payout_to_date"),
        ("commerce_transactions", "transaction_from_date", "transaction_to_date"),
        ("commerce_payouts", "payout_from_date", "payout_to_date"),
        ("commerce_balances", "balance_from_date", "balance_to_date"),
    ],
)
def test_iter_records_sends_each_resource_its_own_date_params(conn_env, resource, from_key, to_key):
    import datetime as dt

    rec = Recorder()
    list(
        hook(rec).iter_records(
            resource, from_date=dt.date(2024, 1, 1), to_date="2024-01-31", account_id="acc"
        )
    )
    params = dict(rec.requests[0].url.params)
    assert params == {
        from_key: "2024-01-01",
        to_key: "2024-01-31",
        "account_id": "acc",
        "limit": "100",
        "offset": "0",
    }
    assert rec.requests[0].url.path == RESOURCES[resource].path


def test_iter_records_pages_until_a_short_page(conn_env):
    def respond(req):
        off = int(req.url.params["offset"])
        return httpx.Response(200, json={"data": [{"id": off + i} for i in range(100 if off < 200 else 42)]})

    rec = Recorder(respond)
    assert len(list(hook(rec).iter_records("contents", from_date="2024-01-01", to_date="2024-02-01"))) == 242
    assert [r.url.params["offset"] for r in rec.requests] == ["0", "100", "200"]


def test_local_argument_errors_are_config_errors(conn_env):
    h = hook(Recorder())
    with pytest.raises(CreatorSyncConfigError, match="requires account_id"):
        list(h.iter_records("social_transactions"))
    with pytest.raises(CreatorSyncConfigError, match="unknown InsightIQ resource 'nope'"):
        list(h.iter_records("nope"))
    with pytest.raises(CreatorSyncConfigError, match="no date filter"):
        list(h.iter_records("accounts", from_date="2024-01-01"))


def test_table_reads_and_named_calls_hit_the_documented_endpoints(conn_env):
    rec = Recorder(lambda req: httpx.Response(200, json={"id": "x", "data": []}))
    h = hook(rec)
    h.get_record("work_platforms", "wp")
    h.create_user("Arvind", "ext-1")
    h.get_user_by_external_id("ext-1")
    h.create_sdk_token("u1", ["IDENTITY", "ENGAGEMENT"])
    h.get_audience("a1")
    h.refresh("contents", "a1")
    h.fetch_historic("social_payouts", "a1", "2020-04-01")
    h.search("commerce_balances", ["b1"])
    h.get_record("commerce_transactions", "t1")
    h.create_webhook("http://hook", ["PROFILES.ADDED"])
    h.update_webhook("w1", "http://hook", ["PROFILES.UPDATED"])
    h.send_mock_webhook({"event": "PROFILES.ADDED"})
    seen = [(r.method, r.url.path) for r in rec.requests]
    assert seen == [
        ("GET", "/v1/work-platforms/wp"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users/external_id/ext-1"),
        ("POST", "/v1/sdk-tokens"),
        ("GET", "/v1/audience"),
        ("POST", "/v1/social/contents/refresh"),
        ("POST", "/v1/social/income/payouts/fetch-historic"),
        ("POST", "/v1/commerce/income/balances/search"),
        ("GET", "/v1/commerce/income/transactions/t1"),
        ("POST", "/v1/webhooks"),
        ("PUT", "/v1/webhooks/w1"),
        ("POST", "/v1/webhooks/send"),
    ]
    assert json.loads(rec.requests[6].content) == {"account_id": "a1", "from_date": "2020-04-01"}
    with pytest.raises(CreatorSyncConfigError, match="no refresh/fetch-historic/search"):
        h.refresh("users", "a1")


def test_test_connection_reports_success_and_auth_failure(conn_env):
    assert hook(Recorder()).test_connection()[0] is True
    bad = Recorder(lambda req: httpx.Response(401, json={"error": {"message": "Authentication failed"}}))
    ok, message = hook(bad).test_connection()
    assert not ok
    assert "HTTP 401: Authentication failed" in message and "'insightiq_default'" in message
    assert "sandbox-client-secret" not in message
