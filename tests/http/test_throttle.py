"""Throttles the vendor docs leave open (insider-data-governance.md section 0 "Throttling"): a 429 without
Retry-After backs off exponentially in steps of the limiter's window, a 403 "Request Limit Exceeded" is a
throttle, every other 403 fails at once naming the connection."""

from __future__ import annotations

import math

import httpx
import pytest

from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.http.errors import VendorAuthError, VendorRateLimitError
from creator_sync.http.limiter import SlidingWindowLimiter
from creator_sync.http.outcomes import Outcome, classify

WINDOW = 60.0  # Insider's windows are one minute long


class FixedWindowVendor:
    """A vendor counting arrivals in epoch-aligned fixed windows on a fake clock, answering a bare throttle
    (429 without Retry-After, or Insider's 403 "Request Limit Exceeded") to every request past the limit."""

    def __init__(self, limit: int, *, start: float, throttle: str = "bare_429") -> None:
        self.limit, self.now, self.throttle = limit, start, throttle
        self.counts: dict[int, int] = {}
        self.arrivals: list[tuple[float, int]] = []  # (time, status)

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self, request: httpx.Request) -> httpx.Response:
        index = math.floor(self.now / WINDOW)
        self.counts[index] = self.counts.get(index, 0) + 1
        if self.counts[index] > self.limit:
            self.arrivals.append((self.now, 0))
            if self.throttle == "throttle_403":
                return httpx.Response(403, json={"success": False, "message": "Request Limit Exceeded"})
            return httpx.Response(429, json={"error": "rejected: too many requests"})
        self.arrivals.append((self.now, 200))
        return httpx.Response(200, json={"ok": True})

    def windows_of_retries(self) -> list[int]:
        return [math.floor(at / WINDOW) for at, _ in self.arrivals]


def client_for(vendor: FixedWindowVendor, *, limiter_window: float = WINDOW * 1.03, **retry) -> VendorClient:
    return VendorClient(
        vendor="Insider",
        base_url="https://unification.example.test",
        conn_id="insider_default",
        transport=httpx.MockTransport(vendor),
        limiters=SlidingWindowLimiter(10_000, limiter_window, name="insider_upsert"),
        retry=RetrySettings(**{"max_attempts": 5, **retry}),
        sleep=vendor.sleep,
    )


@pytest.mark.parametrize("throttle", ["bare_429", "throttle_403"])
def test_a_bare_throttle_retries_in_a_later_vendor_window_and_succeeds(throttle):
    # 10 s into a full window: a retry after 1 s (or any wait under the window) is refused again
    vendor = FixedWindowVendor(limit=1, start=WINDOW * 1000 + 10, throttle=throttle)
    vendor.counts[1000] = 1  # the window is already full
    client = client_for(vendor)
    assert client.post("/api/user/v1/upsert", {"users": []}) == {"ok": True}
    windows = vendor.windows_of_retries()
    assert windows[0] == 1000 and windows[1] > 1000 and len(windows) == 2
    assert client.stats.rate_limited_429 == 1 and client.stats.retries == 1


def test_the_guard_fails_with_a_fixed_one_second_wait_every_retry_lands_in_the_same_window(monkeypatch):
    """The guard switched off (the fixed 1 s wait of a bare 429): every retry arrives in the full window."""
    vendor = FixedWindowVendor(limit=1, start=WINDOW * 1000 + 10)
    vendor.counts[1000] = 1
    client = client_for(vendor)
    monkeypatch.setattr(client, "throttle_backoff", lambda window, k: 1.0)
    with pytest.raises(VendorRateLimitError):
        client.post("/api/user/v1/upsert", {"users": []})
    assert set(vendor.windows_of_retries()) == {1000} and len(vendor.arrivals) == 5


def test_the_bare_throttle_backoff_doubles_from_the_limiter_window_with_jitter_and_is_capped():
    vendor = FixedWindowVendor(limit=0, start=0.0)
    sleeps: list[float] = []
    client = client_for(vendor, max_retry_after=200.0, throttle_jitter=0.25)
    client._sleep = sleeps.append
    with pytest.raises(VendorRateLimitError):
        client.post("/api/user/v1/upsert", {"users": []})
    w = WINDOW * 1.03
    for got, base in zip(sleeps, [w, 2 * w, 200.0, 200.0], strict=True):
        assert base <= got <= base + 0.25 * w
    assert len({round(s, 6) for s in sleeps[2:]}) == 2  # jitter: clients do not return in lockstep


def test_a_bare_throttle_on_an_unlimited_client_backs_off_from_the_minimum_wait():
    script_calls: list[httpx.Request] = []

    def handler(request):
        script_calls.append(request)
        return httpx.Response(429) if len(script_calls) < 3 else httpx.Response(200, json={})

    sleeps: list[float] = []
    client = VendorClient(
        vendor="InsightIQ",
        base_url="https://api.example.test",
        transport=httpx.MockTransport(handler),
        retry=RetrySettings(min_throttle_wait=1.0, throttle_jitter=0.0),
        sleep=sleeps.append,
    )
    client.get("/v1/accounts")
    assert sleeps == [1.0, 2.0]


def test_a_403_throttle_with_retry_after_waits_the_retry_after():
    answers = [
        httpx.Response(403, headers={"Retry-After": "3"}, json={"message": "Request Limit Exceeded"}),
        httpx.Response(200, json={"ok": True}),
    ]
    sleeps: list[float] = []
    client = VendorClient(
        vendor="Insider",
        base_url="https://api.example.test",
        transport=httpx.MockTransport(lambda r: answers.pop(0)),
        sleep=sleeps.append,
    )
    assert client.get("/x") == {"ok": True}
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] < 3.5


@pytest.mark.parametrize(
    "body",
    [
        {
            "success": False,
            "message": "Access Denied. You do not have sufficient access to perform this action.",
        },
        {"error": "invalid partner name or request token: forbidden"},
    ],
)
def test_every_other_403_fails_at_once_naming_the_connection(body):
    calls: list[httpx.Request] = []

    def handler(request):
        calls.append(request)
        return httpx.Response(403, json=body)

    client = VendorClient(
        vendor="Insider",
        base_url="https://api.example.test",
        conn_id="insider_default",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    with pytest.raises(VendorAuthError, match="Airflow connection 'insider_default'"):
        client.post("/api/user/v1/upsert", {})
    assert len(calls) == 1


def test_classify_names_the_403_throttle_and_only_it():
    throttle = classify(httpx.Response(403, text='{"success":false,"message":"Request limit exceeded"}'))
    assert throttle.outcome is Outcome.UNPROCESSED and throttle.throttled
    denied = classify(httpx.Response(403, json={"message": "Access Denied."}))
    assert denied.outcome is Outcome.PERMANENT and not denied.throttled
    assert classify(httpx.Response(429)).throttled
