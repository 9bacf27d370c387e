"""Faults after processing: the sandbox does the work (the user is stored), then loses the answer: drops
the connection, holds it past the client's timeout, or sends a truncated 2xx body. Injected 429s are
counted apart from real limit 429s."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_samples import INSIDER_HEADERS, IQ_AUTH

pytestmark = pytest.mark.slow

UPSERT = "/api/user/v1/upsert"


def upsert(sandbox, uuid: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{sandbox.insider_url}{UPSERT}",
        headers=INSIDER_HEADERS,
        json={"users": [{"identifiers": {"uuid": uuid}, "attributes": {"name": uuid}}]},
        timeout=timeout,
    )


@pytest.fixture
def insider_faults(sandbox):
    # an answer an earlier test left held (its client gone) ends before the counts are reset: otherwise it
    # lands in this test's counts (seen on a loaded machine: a 3 s hold's 200_held in the next test)
    deadline = time.monotonic() + 30
    while (stats := sandbox.stats("insider"))["requests_in_flight"]:
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)
    sandbox.reset("insider")
    yield lambda values: sandbox.configure("insider", values)
    sandbox.configure(
        "insider",
        {"fault_drop_after": 0, "fault_timeout_after": 0, "fault_truncated_after": 0, "fault_429": 0},
    )
    sandbox.configure("insider", {"slow_seconds": 5})


def test_truncated_2xx_after_processing(sandbox, insider_faults):
    insider_faults({"fault_truncated_after": 1.0})
    r = upsert(sandbox, "truncated-1")
    assert r.status_code == 200 and r.content
    with pytest.raises(ValueError):
        r.json()
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["faults_injected"]["truncated_after"] == 1


def test_dropped_connection_after_processing(sandbox, insider_faults):
    insider_faults({"fault_drop_after": 1.0})
    with pytest.raises(httpx.TransportError):
        upsert(sandbox, "dropped-1")
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["faults_injected"]["drop_after"] == 1
    assert stats["requests_by_status"].get("dropped_after_processing") == 1


def test_timeout_after_processing(sandbox, insider_faults):
    insider_faults({"fault_timeout_after": 1.0, "slow_seconds": 3})
    with pytest.raises(httpx.ReadTimeout):
        upsert(sandbox, "timeout-1", timeout=0.5)
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["faults_injected"]["timeout_after"] == 1
    assert stats["held_answers_delivered"] == 0  # the client had gone when the hold ended


@pytest.mark.parametrize("fault", ["fault_timeout_after", "fault_slow"])
def test_a_held_answer_is_counted_apart_from_the_statuses_of_answers_sent(sandbox, insider_faults, fault):
    """A held 404 (a Profile API read of a user Insider does not hold) is one fault, not also one of the
    plain 404 answers: a report that adds the vendor's 404s to the injected faults counts it once."""
    insider_faults({fault: 1.0, "slow_seconds": 1.0})
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{sandbox.insider_url}/api/user/v1/profile",
                headers=INSIDER_HEADERS,
                json={"identifiers": {"uuid": f"nobody-{fault}"}, "attributes": ["name"]},
                timeout=0.3,
            )
        deadline = time.monotonic() + 10  # the sandbox answers (to nobody) when the hold ends
        while not (stats := sandbox.stats("insider"))["requests_by_status"]:
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
    finally:
        sandbox.configure("insider", {"fault_slow": 0})
    # one answer, under <status>_held (404 when the endpoint read the body; the slow fault's endpoint may
    # instead find its client gone and answer 500 to nobody, see devtools.sandbox.middleware)
    assert len(stats["requests_by_status"]) == 1, stats
    (status,) = stats["requests_by_status"]
    assert status.endswith("_held") and stats["requests_by_status"][status] == 1, stats
    assert sum(stats["faults_injected"].values()) == 1


@pytest.mark.parametrize("fault", ["fault_timeout_after", "fault_slow"])
def test_a_held_answer_a_patient_client_still_waits_for_is_delivered_and_counted(
    sandbox, insider_faults, fault
):
    """A held answer is a fault only for a client whose timeout is shorter than the hold: a client still
    connected gets a usable answer, and the sandbox counts it apart so reports can be reconciled."""
    insider_faults({fault: 1.0, "slow_seconds": 0.3})
    try:
        r = upsert(sandbox, f"patient-{fault}", timeout=10)
    finally:
        sandbox.configure("insider", {"fault_slow": 0})
    assert r.status_code == 200 and r.json()["data"]["successful"] == {"count": 1}
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["held_answers_delivered"] == 1
    assert stats["held_usable_answers_delivered"] == 1


@pytest.mark.parametrize("fault", ["fault_timeout_after", "fault_slow"])
def test_a_held_404_a_patient_client_receives_is_delivered_but_not_usable(sandbox, insider_faults, fault):
    """A held Profile API 404 the client still receives costs it a failure like any 404: it counts as a
    delivered held answer, not as a usable one (a report subtracting it from the faults would miss one)."""
    insider_faults({fault: 1.0, "slow_seconds": 0.3})
    try:
        r = httpx.post(
            f"{sandbox.insider_url}/api/user/v1/profile",
            headers=INSIDER_HEADERS,
            json={"identifiers": {"uuid": f"nobody-patient-{fault}"}, "attributes": ["name"]},
            timeout=10,
        )
    finally:
        sandbox.configure("insider", {"fault_slow": 0})
    assert r.status_code == 404
    stats = sandbox.stats("insider")
    assert stats["held_answers_delivered"] == 1 and stats["held_usable_answers_delivered"] == 0, stats


def test_a_read_can_lose_its_answer_too(sandbox):
    sandbox.configure("insightiq", {"fault_truncated_after": 1.0})
    try:
        r = httpx.get(f"{sandbox.insightiq_url}/v1/work-platforms", auth=IQ_AUTH, timeout=30)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
    finally:
        sandbox.configure("insightiq", {"fault_truncated_after": 0})


def test_injected_429s_are_counted_apart_from_real_limit_429s(sandbox, insider_faults):
    insider_faults({"fault_429": 1.0})
    assert [upsert(sandbox, f"u{i}").status_code for i in range(3)] == [429] * 3
    stats = sandbox.stats("insider")
    assert stats["injected_429s"] == 3 and stats["rate_limited_429s"] == 0
    assert stats["attempted_max_in_window"]["upsert"] == 3  # they arrived all the same
