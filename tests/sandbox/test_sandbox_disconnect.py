"""A slow Insider upsert whose client gives up before the answer (read timeout during ``latency_seconds`` or
the ``slow`` fault's sleep): by default the sandbox does not process it (uvicorn hands the endpoint a
disconnect instead of the body); with ``complete_after_disconnect`` it is processed (stored) all the same,
as a real server that accepted the request would."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_samples import INSIDER_HEADERS

pytestmark = pytest.mark.slow
UPSERT = "/api/user/v1/upsert"
SLOW = 2.0
READ_TIMEOUT = 0.5
DELAYS = {
    "slow_fault": {"fault_slow": 1.0, "slow_seconds": SLOW},
    "latency": {"latency_seconds": SLOW},
}
DEFAULTS = {"fault_slow": 0, "slow_seconds": 5, "latency_seconds": 0, "complete_after_disconnect": False}


@pytest.fixture
def insider_config(sandbox):
    settled(sandbox, timeout=30)  # no request of an earlier test is still running inside the sandbox
    sandbox.reset("insider")
    yield lambda values: sandbox.configure("insider", values)
    sandbox.configure("insider", DEFAULTS)


def give_up(sandbox, uuid: str) -> None:
    """Send an upsert and stop waiting for its answer after READ_TIMEOUT seconds."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sandbox.insider_url}{UPSERT}",
            headers=INSIDER_HEADERS,
            json={"users": [{"identifiers": {"uuid": uuid}, "attributes": {"name": uuid}}]},
            timeout=httpx.Timeout(30, read=READ_TIMEOUT),
        )


def settled(sandbox, timeout: float = SLOW + 10, answers: int = 0) -> dict:
    """Insider stats once no request is running inside the sandbox and at least ``answers`` statuses are
    counted (an abandoned request counts its status when it finishes)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = sandbox.stats("insider")
        done = stats["requests_in_flight"] == 0
        if done and sum(stats["requests_by_status"].values()) >= answers:
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


@pytest.mark.parametrize("delay", list(DELAYS))
def test_by_default_an_abandoned_slow_upsert_is_not_processed(sandbox, insider_config, delay):
    assert insider_config(DELAYS[delay])["complete_after_disconnect"] is False  # the default
    give_up(sandbox, f"off-{delay}")
    stats = settled(sandbox, answers=1)
    # the endpoint got http.disconnect instead of the body: nothing stored, nothing processed. The status of
    # the answer no client receives is not asserted: on a loaded machine it depends on when the server sees
    # the disconnect.
    assert stats["users_stored"] == 0 and stats["upsert_requests"] == 0
    assert stats["processed_after_disconnect"] == 0
    assert sandbox.insider_lookup([f"off-{delay}"]) == {f"off-{delay}": None}


@pytest.mark.parametrize("delay", list(DELAYS))
def test_complete_after_disconnect_processes_an_abandoned_slow_upsert(sandbox, insider_config, delay):
    config = insider_config({**DELAYS[delay], "complete_after_disconnect": True})
    assert config["complete_after_disconnect"] is True
    for _ in range(3):  # on a starved machine the client can give up before the server read the body
        started = time.monotonic()
        give_up(sandbox, f"on-{delay}")
        assert time.monotonic() - started < SLOW  # the client gave up before the sandbox processed anything
        stats = settled(sandbox, answers=1)
        if "disconnected_before_body" not in stats["requests_by_status"]:
            break
        sandbox.reset("insider")
    assert stats["users_stored"] == 1 and stats["upsert_requests"] == 1
    held = "200_held" if DELAYS[delay].get("fault_slow") else "200"  # the slow fault's answer counts apart
    assert stats["requests_by_status"] == {held: 1} and stats["processed_after_disconnect"] == 1
    assert sandbox.insider_lookup([f"on-{delay}"])[f"on-{delay}"]["attributes"]["name"] == f"on-{delay}"


def test_complete_after_disconnect_answers_a_patient_client_normally(sandbox, insider, insider_config):
    insider_config({"complete_after_disconnect": True, "latency_seconds": 0.2})
    user = {"identifiers": {"uuid": "patient"}, "attributes": {"name": "P"}}
    response = insider.post(UPSERT, json={"users": [user]})
    assert response.json() == {"data": {"successful": {"count": 1}, "fail": {}}}
    assert insider.post(UPSERT, content=b"{not json").status_code == 400
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["processed_after_disconnect"] == 0
    assert sandbox.configure("insider", {})["complete_after_disconnect"] is True
    sandbox.reset("insider")
    assert sandbox.configure("insider", {})["complete_after_disconnect"] is True  # kept across reset
    bad = httpx.post(f"{sandbox.insider_url}/_sandbox/config", json={"complete_after_disconnect": "yes"})
    assert bad.status_code == 400
