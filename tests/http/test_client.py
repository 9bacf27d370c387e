"""The HTTP core over httpx.MockTransport: retries, backoff, Retry-After, fail-fast errors, secrets."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from creator_sync.http.client import (
    RequestOptions,
    RetrySettings,
    VendorClient,
    parse_retry_after,
)
from creator_sync.http.errors import (
    AmbiguousOutcomeError,
    VendorAuthError,
    VendorBadRequestError,
    VendorNotFoundError,
    VendorPermanentError,
    VendorRateLimitError,
    VendorResponseError,
    VendorServerError,
    VendorTransientError,
    VendorTransportError,
)
from creator_sync.http.limiter import SlidingWindowLimiter, UnlimitedLimiter
from creator_sync.http.outcomes import Outcome, classify
from creator_sync.http.paging import iter_offset

SECRET = "sandbox-client-secret"
TOKEN = "1a2b3c4e5d6f"


class Script:
    """A MockTransport handler answering from a list of responses/exceptions, recording requests."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def make_client(script, *, sleeps=None, retry=None, **kw) -> VendorClient:
    return VendorClient(
        vendor="InsightIQ",
        base_url="https://api.example.test",
        conn_id="insightiq_default",
        auth=httpx.BasicAuth("sandbox-client-id", SECRET),
        headers={"X-REQUEST-TOKEN": TOKEN},
        secrets=[SECRET, TOKEN],
        transport=httpx.MockTransport(script),
        retry=retry or RetrySettings(max_attempts=5, backoff_initial=0.5, backoff_max=4, jitter=0.25),
        sleep=(sleeps.append if sleeps is not None else time.sleep),
        **kw,
    )


def ok(body=None, status=200):
    return httpx.Response(status, json=body if body is not None else {"ok": True})


def test_5xx_then_200_retries_with_capped_exponential_backoff_and_jitter():
    script = Script(*(httpx.Response(503, json={"error": "busy"}) for _ in range(4)), ok())
    sleeps: list[float] = []
    client = make_client(script, sleeps=sleeps)
    assert client.get("/v1/work-platforms") == {"ok": True}
    assert len(script.requests) == 5
    # 0.5, 1, 2, 4 (capped at 4) each plus jitter in [0, 0.25]
    for got, base in zip(sleeps, [0.5, 1.0, 2.0, 4.0], strict=True):
        assert base <= got <= base + 0.25
    assert client.stats.retries == 4 and client.stats.requests == 5 and client.stats.server_errors == 4


def test_5xx_until_attempts_run_out_raises_a_transient_error():
    script = Script(httpx.Response(502, text="bad gateway"))
    client = make_client(script, sleeps=[])
    with pytest.raises(VendorServerError) as info:
        client.get("/v1/users")
    assert isinstance(info.value, VendorTransientError)
    assert len(script.requests) == 5
    assert "InsightIQ GET /v1/users failed: HTTP 502" in str(info.value)
    assert client.stats.failures == 1


def test_429_retry_after_is_waited_at_least_then_succeeds():
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "rate"}), ok())
    sleeps: list[float] = []
    client = make_client(script, sleeps=sleeps)
    assert client.get("/v1/accounts") == {"ok": True}
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.5
    assert client.stats.rate_limited_429 == 1 and client.stats.retries == 1


def test_429_retry_after_really_waits_two_seconds():
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), ok())
    client = make_client(script)
    start = time.monotonic()
    assert client.get("/v1/accounts") == {"ok": True}
    assert time.monotonic() - start >= 2.0


def test_persistent_429_is_bounded_and_a_too_long_retry_after_is_not_slept():
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}))
    client = make_client(script, sleeps=[], retry=RetrySettings(max_attempts=3))
    with pytest.raises(VendorRateLimitError):
        client.get("/v1/accounts")
    assert len(script.requests) == 3
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    sleeps: list[float] = []
    client = make_client(script, sleeps=sleeps)
    with pytest.raises(VendorRateLimitError) as info:
        client.get("/v1/accounts")
    assert sleeps == [] and info.value.retry_after == 3600


def test_401_fails_at_once_naming_vendor_method_path_status_message_and_connection():
    script = Script(httpx.Response(401, json={"error": "Invalid client credentials"}))
    client = make_client(script, sleeps=[])
    with pytest.raises(VendorAuthError) as info:
        client.get("/v1/social/contents", params={"account_id": "acc-1"})
    text = str(info.value)
    assert len(script.requests) == 1
    assert "InsightIQ GET /v1/social/contents failed: HTTP 401: Invalid client credentials" in text
    assert "Airflow connection 'insightiq_default'" in text
    assert SECRET not in text and TOKEN not in text and "Basic" not in text and "acc-1" not in text
    assert isinstance(info.value, VendorPermanentError) and not info.value.retryable


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, VendorBadRequestError),
        (403, VendorAuthError),
        (404, VendorNotFoundError),
        (422, VendorBadRequestError),
    ],
)
def test_other_4xx_fail_fast(status, cls):
    script = Script(httpx.Response(status, json={"message": "nope"}))
    client = make_client(script, sleeps=[])
    with pytest.raises(cls, match=f"HTTP {status}: nope"):
        client.post("/v1/users", {"name": "x"})
    assert len(script.requests) == 1


def test_secrets_never_reach_exception_text_repr_or_logs(caplog):
    echo = f"token {TOKEN} and secret {SECRET} are wrong"
    script = Script(httpx.Response(500, json={"error": echo}), httpx.Response(403, json={"error": echo}))
    client = make_client(script, sleeps=[])
    with caplog.at_level(logging.DEBUG), pytest.raises(VendorAuthError) as info:
        client.get("/v1/users")
    for text in (str(info.value), repr(info.value), repr(client), caplog.text, info.value.vendor_message):
        assert SECRET not in text and TOKEN not in text
    assert "***" in str(info.value)


def test_dropped_connection_then_200_is_retried():
    script = Script(httpx.RemoteProtocolError("Server disconnected without sending a response."), ok())
    client = make_client(script, sleeps=[])
    assert client.get("/v1/users") == {"ok": True}
    assert client.stats.transport_errors == 1 and client.stats.retries == 1


def test_timeouts_and_refused_connections_are_retried_then_raised():
    script = Script(httpx.ReadTimeout("read timed out"))
    client = make_client(script, sleeps=[], retry=RetrySettings(max_attempts=3))
    with pytest.raises(VendorTransportError, match="timed out"):
        client.get("/v1/users")
    assert len(script.requests) == 3
    script = Script(httpx.ConnectError("refused"), ok())
    assert make_client(script, sleeps=[]).get("/v1/users") == {"ok": True}


def test_malformed_json_then_200_is_retried():
    script = Script(httpx.Response(200, content=b'{"data": [1, 2'), ok())
    client = make_client(script, sleeps=[])
    assert client.get("/v1/users") == {"ok": True}
    assert len(script.requests) == 2
    script = Script(httpx.Response(200, content=b"<html>"))
    with pytest.raises(VendorResponseError, match="malformed JSON"):
        make_client(script, sleeps=[], retry=RetrySettings(max_attempts=2)).get("/v1/users")


def test_every_attempt_passes_the_limiter_and_actual_cost_settles_it():
    limiter = SlidingWindowLimiter(100, 60, pace=False)
    script = Script(httpx.Response(500), ok({"quota": {"cost": 2.5}}))
    client = make_client(script, sleeps=[], limiters={"insider_profile": limiter})
    client.request("POST", "/p", json_body={}, cost=10, actual_cost=lambda d: d["quota"]["cost"])
    assert limiter.stats.acquired == 2
    assert limiter.sends_in_window() == pytest.approx(12.5)  # failed attempt's estimate + actual cost


def test_json_body_is_sent_compact_with_content_type():
    script = Script(ok())
    make_client(script, sleeps=[]).post("/v1/users", {"name": "Ä"})
    req = script.requests[0]
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {"name": "Ä"}


def test_paging_stops_on_a_short_page():
    def handler(request):
        offset = int(request.url.params["offset"])
        assert request.url.params["limit"] == "100"
        n = 100 if offset < 300 else 5
        return ok({"data": [{"i": offset + i} for i in range(n)], "metadata": {"offset": offset}})

    script = Script()
    script.steps = []
    client = make_client(handler, sleeps=[])
    records = list(iter_offset(client, "/v1/social/contents", {"account_id": "a"}))
    assert [r["i"] for r in records] == list(range(305))


def test_paging_exact_multiple_ends_on_an_empty_page():
    calls = []

    def handler(request):
        offset = int(request.url.params["offset"])
        calls.append(offset)
        return ok({"data": [{"i": 1}] * (100 if offset < 200 else 0)})

    assert len(list(iter_offset(make_client(handler, sleeps=[]), "/x"))) == 200
    assert calls == [0, 100, 200]


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert (
        9
        <= parse_retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10)))
        <= 10.5
    )


def test_paging_with_a_stride_splits_one_list_between_readers_without_a_request_in_common():
    calls = []

    def handler(request):
        offset = int(request.url.params["offset"])
        calls.append(offset)
        n = max(0, min(100, 1030 - offset))  # 1,030 records: ten full pages and a short one
        return ok({"data": [{"i": offset + i} for i in range(n)]})

    client = make_client(handler, sleeps=[])
    readers = [list(iter_offset(client, "/v1/accounts", offset=k * 100, page_stride=4)) for k in range(4)]
    assert sorted(r["i"] for reader in readers for r in reader) == list(range(1030))
    assert len(calls) == len(set(calls))  # no page read twice
    assert len(calls) <= 11 + 3  # the 11 pages, plus at most one empty page per other reader


# -- one rule for ambiguous outcomes -------------------------------------------------------------------------

TRUNCATED_200 = httpx.Response(200, content=b'{"data": {"successful": {"count": 5')
DROPPED_AFTER_WRITE = httpx.RemoteProtocolError("Server disconnected without sending a response.")


def _fresh(step):
    """A new response object per use (an httpx.Response is read once)."""
    if isinstance(step, httpx.Response):
        return httpx.Response(step.status_code, content=step.content, headers=step.headers)
    return step


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(200, json={"ok": True}), Outcome.OK),
        (httpx.Response(204), Outcome.OK),
        (TRUNCATED_200, Outcome.AMBIGUOUS),
        (DROPPED_AFTER_WRITE, Outcome.AMBIGUOUS),
        (httpx.ReadError("connection reset"), Outcome.AMBIGUOUS),
        (httpx.ReadTimeout("read timed out"), Outcome.AMBIGUOUS),
        (httpx.WriteTimeout("write timed out"), Outcome.AMBIGUOUS),
        (httpx.Response(500), Outcome.AMBIGUOUS),
        (httpx.Response(502), Outcome.AMBIGUOUS),
        (httpx.Response(503), Outcome.AMBIGUOUS),
        (httpx.Response(504), Outcome.AMBIGUOUS),
        (httpx.Response(424, json={"message": "SERVICE:-"}), Outcome.AMBIGUOUS),
        (httpx.Response(429, headers={"Retry-After": "1"}), Outcome.UNPROCESSED),
        (httpx.ConnectError("Connection refused"), Outcome.UNPROCESSED),
        (httpx.ConnectTimeout("connect timed out"), Outcome.UNPROCESSED),
        (httpx.PoolTimeout("no free connection"), Outcome.UNPROCESSED),
        (httpx.Response(400, json={"error": "bad"}), Outcome.PERMANENT),
        (httpx.Response(401), Outcome.PERMANENT),
        (httpx.Response(404), Outcome.PERMANENT),
    ],
)
def test_classify_maps_each_network_outcome(answer, outcome):
    assert classify(_fresh(answer)).outcome is outcome


def test_classify_a_non_json_2xx_is_ok_when_no_json_is_expected_and_a_documented_5xx_is_unprocessed():
    assert classify(httpx.Response(200, text="<html>"), expect_json=False).data == "<html>"
    assert classify(httpx.Response(503), unprocessed_statuses={503}).outcome is Outcome.UNPROCESSED


AMBIGUOUS_STEPS = {
    "truncated 200 body": TRUNCATED_200,
    "dropped after write": DROPPED_AFTER_WRITE,
    "read timeout": httpx.ReadTimeout("read timed out"),
    "502": httpx.Response(502, json={"error": "bad gateway"}),
    "503": httpx.Response(503, json={"error": "busy"}),
    "504": httpx.Response(504, text="gateway timeout"),
}


@pytest.mark.parametrize("name", sorted(AMBIGUOUS_STEPS))
def test_a_non_idempotent_request_with_an_ambiguous_outcome_is_sent_once_and_raises(name):
    script = Script(_fresh(AMBIGUOUS_STEPS[name]), ok())
    client = make_client(script, sleeps=[])
    with pytest.raises(AmbiguousOutcomeError) as info:
        client.post("/api/user/v1/upsert", {"users": []}, idempotent=False)
    assert len(script.requests) == 1  # never re-sent
    err = info.value
    assert (err.method, err.path, err.vendor) == ("POST", "/api/user/v1/upsert", "InsightIQ")
    assert err.outcome and "may have been processed" in str(err)
    assert isinstance(err, VendorTransientError)  # an Airflow retry runs the caller's lost-answer check
    for text in (str(err), repr(err), err.outcome, err.vendor_message or ""):
        assert SECRET not in text and TOKEN not in text
    assert client.stats.ambiguous == 1 and client.stats.retries == 0 and client.stats.failures == 1


@pytest.mark.parametrize("name", sorted(AMBIGUOUS_STEPS))
def test_an_idempotent_request_with_an_ambiguous_outcome_is_retried(name):
    script = Script(_fresh(AMBIGUOUS_STEPS[name]), ok())
    client = make_client(script, sleeps=[])
    assert client.get("/v1/users") == {"ok": True}
    assert len(script.requests) == 2
    assert client.stats.retries == 1 and client.stats.ambiguous == 0


def test_an_ambiguous_outcome_error_survives_pickling_with_its_outcome():
    import pickle

    script = Script(httpx.ReadTimeout("read timed out"))
    with pytest.raises(AmbiguousOutcomeError) as info:
        make_client(script, sleeps=[]).post("/v1/single", {"title": "t"}, idempotent=False)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is AmbiguousOutcomeError and copy.outcome == info.value.outcome
    assert (copy.method, copy.path, str(copy)) == ("POST", "/v1/single", str(info.value))


@pytest.mark.parametrize("idempotent", [True, False])
def test_429_with_retry_after_is_retried_for_every_request_after_the_wait(idempotent):
    script = Script(httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "rate"}), ok())
    sleeps: list[float] = []
    client = make_client(script, sleeps=sleeps)
    assert client.post("/api/user/v1/upsert", {}, idempotent=idempotent) == {"ok": True}
    assert len(script.requests) == 2 and len(sleeps) == 1 and sleeps[0] >= 3.0
    assert client.stats.rate_limited_429 == 1


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_refused_connection_is_retried_for_every_request(idempotent):
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"), ok())
    client = make_client(script, sleeps=[])
    assert client.post("/api/user/v1/upsert", {}, idempotent=idempotent) == {"ok": True}
    assert len(script.requests) == 2 and client.stats.transport_errors == 1


def test_a_refused_connection_until_attempts_run_out_is_a_transport_error_not_an_ambiguous_one():
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    client = make_client(script, sleeps=[], retry=RetrySettings(max_attempts=3))
    with pytest.raises(VendorTransportError, match="connection failed") as info:
        client.post("/api/user/v1/upsert", {}, idempotent=False)
    assert not isinstance(info.value, AmbiguousOutcomeError) and len(script.requests) == 3


def test_a_5xx_the_vendor_documents_as_unprocessed_is_retried_for_a_non_idempotent_request():
    script = Script(httpx.Response(503), ok())
    client = make_client(script, sleeps=[], unprocessed_statuses={503})
    assert client.post("/v1/users", {}, idempotent=False) == {"ok": True}
    assert len(script.requests) == 2


def test_request_options_object_and_keywords_are_the_same():
    limiter = SlidingWindowLimiter(100, 60, pace=False)
    script = Script(ok({"cost": 3}))
    client = make_client(script, sleeps=[], limiters={"default": UnlimitedLimiter(), "p": limiter})
    opts = RequestOptions(limiter="p", cost=5, actual_cost=lambda d: d["cost"], idempotent=False)
    assert client.request("POST", "/x", json_body={}, options=opts).data == {"cost": 3}
    assert limiter.sends_in_window() == pytest.approx(3)
    with pytest.raises(TypeError):
        client.request("GET", "/x", limiters="p")  # an unknown option is an error, not ignored


def test_the_timeout_env_sets_the_default_timeout_and_refuses_nonsense(monkeypatch):
    from creator_sync.errors import CreatorSyncConfigError
    from creator_sync.http.client import TIMEOUT_ENV, default_timeout

    monkeypatch.setenv(TIMEOUT_ENV, "3")
    assert default_timeout().read == 3 and default_timeout().connect == 3
    assert make_client(Script(ok()), sleeps=[])._http.timeout.read == 3
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(CreatorSyncConfigError, match=TIMEOUT_ENV):
        default_timeout()
