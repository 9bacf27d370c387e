"""Rate-limit fidelity under load, fault injection determinism, and the CLI/launcher."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from sandbox_samples import INSIDER_HEADERS, IQ_AUTH

from devtools.sandbox.faults import KINDS
from devtools.sandbox.launcher import SandboxServers

pytestmark = pytest.mark.slow


def test_30_concurrent_clients_never_exceed_10_per_window(sandbox):
    sandbox.configure("insightiq", {"limits": {"requests": {"rate": 10, "window": 1}}, "concurrency": 8})
    sandbox.reset("insightiq")
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    deadline = time.time() + 3.0

    def client() -> None:
        with httpx.Client(base_url=sandbox.insightiq_url, auth=IQ_AUTH, timeout=30) as http:
            while time.time() < deadline:
                r = http.get("/v1/profiles", params={"limit": 5})
                with lock:
                    results.append((r.status_code, r.headers.get("Retry-After")))

    started = time.time()
    threads = [threading.Thread(target=client) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    try:
        codes = Counter(code for code, _ in results)
        assert codes[200] > 0 and codes[429] > 0 and set(codes) <= {200, 429}
        assert all(ra is not None and ra.isdigit() and int(ra) >= 1 for code, ra in results if code == 429)
        assert codes[200] <= 10 * (int(elapsed) + 2)  # client-side view: at most 10 per started second
        stats = sandbox.stats("insightiq")
        assert stats["max_requests_in_window"]["requests"] <= 10
        assert stats["windows_over_limit"] == 0
        assert stats["max_concurrent_requests"] <= 8
        assert stats["rate_limited_429s"] == codes[429]
        assert stats["requests_by_status"]["200"] == codes[200]
    finally:
        sandbox.configure(
            "insightiq", {"limits": {"requests": {"rate": 100000, "window": 1}}, "concurrency": 1000}
        )


def outcomes(base_url: str, n: int, headers=None, auth=None) -> list[str]:
    seen = []
    with httpx.Client(base_url=base_url, auth=auth, headers=headers, timeout=30) as http:
        for _ in range(n):
            try:
                r = http.get("/v1/users", params={"limit": 1})
                try:
                    r.json()
                    seen.append(str(r.status_code))
                except ValueError:
                    seen.append("malformed")
            except httpx.TransportError:
                seen.append("drop")
    return seen


def test_faults_are_deterministic_and_skip_sandbox_endpoints(sandbox):
    faults = {"fault_5xx": 0.2, "fault_429": 0.1, "fault_drop": 0.1, "fault_malformed": 0.1}
    sandbox.configure("insightiq", faults)
    try:
        sandbox.reset("insightiq")
        first = outcomes(sandbox.insightiq_url, 60, auth=IQ_AUTH)
        for _ in range(20):
            assert httpx.get(f"{sandbox.insightiq_url}/_sandbox/stats").status_code == 200
        injected = sandbox.stats("insightiq")["faults_injected"]
        sandbox.reset("insightiq")
        second = outcomes(sandbox.insightiq_url, 60, auth=IQ_AUTH)
        assert first == second
        kinds = set(first)
        assert {"200", "drop", "malformed", "429"} <= kinds and kinds & {"500", "502", "503"}
        assert sum(injected.values()) == sum(1 for o in first if o != "200")
    finally:
        sandbox.configure("insightiq", {k: 0 for k in faults})


def test_faults_happen_before_any_state_change(sandbox):
    sandbox.reset("insider")
    sandbox.configure("insider", {"fault_5xx": 1.0})
    try:
        r = httpx.post(
            f"{sandbox.insider_url}/api/user/v1/upsert",
            headers=INSIDER_HEADERS,
            json={"users": [{"identifiers": {"uuid": "never"}}]},
        )
        assert r.status_code >= 500
        assert sandbox.stats("insider")["users_stored"] == 0
    finally:
        sandbox.configure("insider", {"fault_5xx": 0})
    sandbox.configure("insider", {"fault_slow": 1.0, "slow_seconds": 0.5})
    try:
        started = time.time()
        r = httpx.post(
            f"{sandbox.insider_url}/api/user/v1/upsert",
            headers=INSIDER_HEADERS,
            json={"users": [{"identifiers": {"uuid": "slow"}}]},
        )
        assert r.status_code == 200 and time.time() - started >= 0.5
    finally:
        sandbox.configure("insider", {"fault_slow": 0, "slow_seconds": 5})


def test_cli_fault_flags_deterministic_under_seed_and_targets():
    args = [
        "--fault-5xx",
        "0.3",
        "--fault-drop",
        "0.1",
        "--fault-targets",
        "insightiq",
        "--insightiq-rate",
        "1000",
    ]
    runs = []
    for _ in range(2):
        with SandboxServers(creators=50, seed=3, extra_args=args) as sb:
            assert sb.pid and sb.insider_url != sb.insightiq_url
            runs.append(outcomes(sb.insightiq_url, 30, auth=IQ_AUTH))
            assert set(outcomes(sb.insider_url, 10, headers=INSIDER_HEADERS)) == {
                "404"
            }  # no such route, and never faulted: not a target
            assert sb.stats("insider")["faults_injected"] == dict.fromkeys(KINDS, 0)
        assert sb.proc.poll() is not None  # stopped on exit
    assert runs[0] == runs[1] and set(runs[0]) >= {"200", "drop"}
