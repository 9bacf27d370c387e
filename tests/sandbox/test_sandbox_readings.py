"""The sandbox options that reproduce the alternative readings of the vendor docs
(devtools/sandbox/readings.py) and what the HTTP core does under each."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_samples import IQ_AUTH, IQ_SEND, IQ_WEBHOOK

from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.webhooks.signature import verify
from devtools.sandbox.readings import Readings, parse_reading_args
from devtools.sandbox.webhooks import DEACTIVATE_AFTER

pytestmark = pytest.mark.slow

ALL_429 = {"fault_429": 1.0}
OFF = {"fault_429": 0.0, "bare_429": False, "throttle_403": False}


@pytest.fixture
def readings_off(sandbox):
    yield
    for svc in ("insightiq", "insider", "web_push"):
        sandbox.configure(svc, OFF)


@pytest.mark.parametrize(
    ("reading", "status", "retry_after"),
    [
        ({}, 429, "1"),
        ({"bare_429": True}, 429, None),
        ({"throttle_403": True}, 403, "1"),
        ({"throttle_403": True, "bare_429": True}, 403, None),
    ],
)
def test_each_throttle_reading_reshapes_every_429(sandbox, readings_off, reading, status, retry_after):
    sandbox.configure("insightiq", {**ALL_429, **reading})
    r = httpx.get(f"{sandbox.insightiq_url}/v1/profiles", auth=IQ_AUTH)
    assert r.status_code == status and r.headers.get("Retry-After") == retry_after
    if status == 403:
        assert r.json() == {"success": False, "message": "Request Limit Exceeded"}
    assert sandbox.stats("insightiq")["requests_by_status"].get(str(status), 0) >= 1


@pytest.mark.parametrize("reading", [{"bare_429": True}, {"throttle_403": True, "bare_429": True}])
def test_the_client_rides_out_bare_throttles_of_the_sandbox(sandbox, readings_off, reading):
    sandbox.configure("insightiq", {"fault_429": 0.5, **reading})
    sandbox.reset("insightiq")
    client = VendorClient(
        vendor="InsightIQ",
        base_url=sandbox.insightiq_url,
        auth=httpx.BasicAuth(*IQ_AUTH),
        retry=RetrySettings(max_attempts=12, min_throttle_wait=0.01, max_retry_after=0.05),
    )
    with client:
        for _ in range(10):
            assert client.get("/v1/profiles", params={"limit": 1})["data"]
    assert client.stats.rate_limited_429 >= 1
    assert sandbox.stats("insightiq")["injected_429s"] == client.stats.rate_limited_429


def test_reading_arguments_and_config_values_are_checked():
    assert parse_reading_args(["bare_429", "unifier=email"]) == {"bare_429": True, "unifier": "email"}
    with pytest.raises(SystemExit, match="unknown"):
        parse_reading_args(["no_such_reading"])
    readings = Readings()
    readings.configure({"throttle_403": "true", "unifier": "phone_number"})
    assert readings.throttle_403 and readings.unifier == "phone_number"
    with pytest.raises(ValueError, match="unifier must be one of"):
        readings.configure({"unifier": "name"})


@pytest.mark.parametrize(("other", "header"), [(False, "Webhook-Signatures"), (True, "Phyllo-Signature")])
def test_the_signature_header_reading_and_the_one_verifier_accepts_both(sandbox, iq, receiver, other, header):
    sandbox.reset("insightiq")
    sandbox.configure("insightiq", {"other_signature_header": other})
    try:
        iq.post("/v1/webhooks", json={**IQ_WEBHOOK, "url": receiver.url + "/hook"}).raise_for_status()
        iq.post("/v1/webhooks/send", json=IQ_SEND).raise_for_status()
        got = receiver.wait(1)[0]
    finally:
        sandbox.configure("insightiq", {"other_signature_header": False})
        sandbox.reset("insightiq")
    names = {k.lower() for k in got["headers"]}
    assert header.lower() in names and len(names & {"webhook-signatures", "phyllo-signature"}) == 1
    assert verify(got["body"], got["headers"], ["sandbox-client-secret"])


def test_a_webhook_is_deactivated_after_three_failed_deliveries_and_a_put_reenables_it(sandbox, iq, receiver):
    sandbox.reset("insightiq")
    dead = {**IQ_WEBHOOK, "url": "http://127.0.0.1:9/unreachable"}
    hook = iq.post("/v1/webhooks", json=dead).json()
    try:
        for _ in range(DEACTIVATE_AFTER - 1):
            assert iq.post("/v1/webhooks/send", json=IQ_SEND).json()["webhooks"] == 1
        _wait_for(lambda: iq.get("/_sandbox/stats").json()["webhook_deliveries"].get("failed") == 2)
        assert iq.get(f"/v1/webhooks/{hook['id']}").json()["is_active"] is True
        assert iq.post("/v1/webhooks/send", json=IQ_SEND).json()["webhooks"] == 1
        _wait_for(lambda: iq.get(f"/v1/webhooks/{hook['id']}").json()["is_active"] is False)
        assert iq.post("/v1/webhooks/send", json=IQ_SEND).json()["webhooks"] == 0
        assert sandbox.stats("insightiq")["webhooks_deactivated"] == 1
        live = {**IQ_WEBHOOK, "url": receiver.url + "/hook", "is_active": True}
        assert iq.put(f"/v1/webhooks/{hook['id']}", json=live).json()["is_active"] is True
        assert iq.post("/v1/webhooks/send", json=IQ_SEND).json()["webhooks"] == 1
        assert len(receiver.wait(1)) == 1
    finally:
        sandbox.reset("insightiq")


def _wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
