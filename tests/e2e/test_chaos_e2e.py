"""creator_sync under the real scheduler with faults on both vendors, and then with its upsert task killed.

Both sandboxes inject, per request: 10% 5xx, 5% 429 (injected, counted apart from real limit 429s), 2%
timeouts, 2% truncated 2xx answers and 2% dropped connections, the last three AFTER the request was
processed (devtools.sandbox.faults: timeout_after, truncated_after, drop_after). 300 creators, upserts of 25
users (CREATOR_SYNC_UPSERT_MAX_USERS): each run reads every creator at InsightIQ's 10 req/s, so the creator
count sets most of the module's time, and about a dozen upsert batches per run give Insider's faults
requests to hit and leave batches to send after the upsert task is killed at its second one. A
non-idempotent upsert whose answer was lost is never re-sent by the client (AmbiguousOutcomeError); the
sender asks Insider (Profile API probes of the in-flight batch) what arrived before sending anything again,
within the attempt, and a killed attempt's retry does the same.

Must hold: Insider holds exactly the valid creators, no event is stored twice and every event of the
interval once, reconciliation holds, the report's retries and 429s per vendor are the sandbox's counts,
no real rate-limit 429 and never more arriving requests per window than the limit, and no connection
secret in logs, XCom, rendered fields, the run note or report.md.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, SETTLE_ENV
from creator_sync.sync.run_context import run_dir_name
from devtools.airflow_stack import AirflowStack, sandbox_connections
from devtools.sandbox.inspection import limit_violations
from devtools.sandbox.launcher import SandboxServers
from devtools.secrets_scan import scan_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # Airflow start + run on a loaded machine

DAG = "creator_sync"
CREATORS = 300
UPSERT_USERS = 25
CLIENT_TIMEOUT_S = 2.0
FAULTS = {
    "--fault-5xx": 0.10,
    "--fault-429": 0.05,
    "--fault-timeout-after": 0.02,
    "--fault-truncated-after": 0.02,
    "--fault-drop-after": 0.02,
}
VENDORS = {"insightiq": "InsightIQ", "insider": "Insider"}


class Chaos:
    def __init__(self, sb: SandboxServers, stack: AirflowStack, home: Path):
        self.sb, self.stack, self.home = sb, stack, home
        self.api = stack.api

    def stored_users(self) -> list[dict]:
        users, offset = [], 0
        while True:
            page = httpx.get(f"{self.sb.insider_url}/_sandbox/users", params={"offset": offset, "limit": 500})
            data = page.json()["data"]
            users += data
            if len(data) < 500:
                return users
            offset += 500

    def events_in(self, run: dict) -> list[dict]:
        start = datetime.fromisoformat(run["data_interval_start"]).timestamp()
        end = datetime.fromisoformat(run["data_interval_end"]).timestamp()
        events = [e for u in self.stored_users() for e in u.get("events", [])]
        moments = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() for e in events]
        return [e for e, m in zip(events, moments, strict=True) if start <= m < end]

    def events_written(self, run_id: str) -> int:
        import json

        stats = self.home / "data" / "runs" / run_dir_name(run_id) / "transform" / "transform_stats.json"
        return json.loads(stats.read_text())["events_written"]

    def running_upsert_mid_batch(self, run_id: str, upserts: int, timeout: float = 600) -> dict:
        """The upsert task instance once one attempt has been running for ``upserts`` upsert requests (an
        attempt may end on a lost answer before that; then the next attempt is watched)."""
        deadline = time.monotonic() + timeout
        watched: tuple[int, int] | None = None  # (try_number, upsert requests when it was first seen)
        while time.monotonic() < deadline:
            ti = next(t for t in self.api.task_instances(DAG, run_id) if t["task_id"] == "upsert")
            sent = self.sb.stats("insider")["upsert_requests"]
            if ti["state"] == "running" and ti["pid"]:
                if watched is None or watched[0] != ti["try_number"]:
                    watched = (ti["try_number"], sent)
                elif sent >= watched[1] + upserts:
                    return ti
            time.sleep(0.2)
        raise AssertionError(f"the upsert never ran {upserts} requests: {self.api.task_states(DAG, run_id)}")

    def run(self, run_id: str) -> dict:
        return next(r for r in self.api.runs(DAG) if r["dag_run_id"] == run_id)

    def finished_runs(self) -> list[dict]:
        """Finished runs; [] while the API server is too busy to answer (a loaded CI machine)."""
        try:
            return [r for r in self.api.runs(DAG) if r["state"] in ("success", "failed")]
        except httpx.TimeoutException:
            return []

    def wait_for_run(self, run_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = next((r for r in self.finished_runs() if r["dag_run_id"] == run_id), None)
            if run:
                return run["state"]
            time.sleep(3)
        raise AssertionError(f"{run_id} did not finish: {self.api.task_states(DAG, run_id)}")


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    args = [x for flag, rate in FAULTS.items() for x in (flag, str(rate))]
    # the held answer outlives the client's timeout by a little (not much: a held InsightIQ request
    # still counts against the sandbox's concurrency cap)
    args += ["--slow-seconds", str(CLIENT_TIMEOUT_S + 0.5), "--fault-targets", "insightiq,insider"]
    sb = SandboxServers(creators=CREATORS, seed=23, extra_args=args).start()
    home = tmp_path_factory.mktemp("airflow-chaos")
    extra = {
        **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
        "CREATOR_SYNC_SCHEDULE": "0 0 * * *",
        "CREATOR_SYNC_RETRY_DELAY_S": "1",
        "CREATOR_SYNC_UPSERT_MAX_USERS": str(UPSERT_USERS),
        "CREATOR_SYNC_HTTP_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rate-limits'}",
        "CREATOR_SYNC_STATE_URL": f"sqlite:///{home / 'state.db'}",
        # this sandbox has no ingestion lag and processes a held or dropped request before it answers, so
        # the lost-answer waits' lengths are not what this test checks (every round still runs; the lag is
        # tested in tests/exactly_once/test_adversarial.py): 1 s settle, rounds 1 s then 2 s apart
        SETTLE_ENV: "1",
        PROBE_BACKOFF_ENV: "1",
    }
    stack = AirflowStack(home, extra_env=extra)
    try:
        stack.start(timeout=600)  # a loaded 2-core CI machine starts Airflow slowly
        yield Chaos(sb, stack, home)
    finally:
        stack.stop()
        sb.stop()


def failed_answers(stats: dict) -> int:
    """Answers the client cannot use: every injected fault and every real limit 429, less the usable held
    answers a client was still connected for (a hold that ended before the client's own timeout, on a loaded
    machine). A held 404 a client still received stays counted once, as the fault."""
    faults = sum(stats["faults_injected"].values()) - stats["held_usable_answers_delivered"]
    return faults + stats["rate_limited_429s"]


def arrivals(stats: dict) -> int:
    return sum(stats["requests_by_status"].values())


def assert_exactly_once(chaos: Chaos, run_id: str) -> dict:
    truth, insider = chaos.sb.stats("insightiq"), chaos.sb.stats("insider")
    assert insider["users_stored"] == truth["creators"] - truth["invalid_creators"], insider
    assert insider["duplicate_events"] == 0, insider
    in_interval = chaos.events_in(chaos.run(run_id))
    assert len(in_interval) == chaos.events_written(run_id) > 0  # every event of the interval, once
    report = chaos.api.xcom(DAG, run_id, "report")
    assert report["reconciled"], report
    assert report["fetched_creators"] == truth["creators"], report
    for service in VENDORS:
        assert limit_violations(chaos.sb.stats(service)) == [], chaos.sb.stats(service)
    return report


def assert_no_secrets(chaos: Chaos, run_ids: list[str]) -> None:
    """No secret (connections of the file and of the environment, the callback token, Airflow logins) in
    any place: task logs, XCom, rendered fields, notes, reports, server logs, the state DB, run files."""
    findings, kinds = scan_stack(
        chaos.api, chaos.home, chaos.stack.env, {DAG: run_ids}, [chaos.home / "state.db"]
    )
    assert {"log", "xcom", "report", "server log", "state DB", "run file"} <= kinds, kinds
    assert findings == [], [str(f) for f in findings]


def test_chaos_run_stores_every_valid_creator_and_event_exactly_once(chaos):
    chaos.api.wait_for_dag(DAG)
    chaos.api.unpause(DAG)  # catchup=False: the scheduler creates the latest complete interval's run
    deadline = time.monotonic() + 900
    while not (runs := chaos.finished_runs()):
        assert time.monotonic() < deadline, chaos.api.runs(DAG)
        time.sleep(3)
    (run,) = runs
    run_id = run["dag_run_id"]
    assert run["state"] == "success", chaos.api.task_states(DAG, run_id)

    report = assert_exactly_once(chaos, run_id)
    injected = {s: chaos.sb.stats(s)["faults_injected"] for s in VENDORS}
    assert all(sum(kinds.values()) > 0 for kinds in injected.values()), injected  # the faults happened
    assert_no_secrets(chaos, [run_id])

    # the report's per-vendor figures are the sandbox's counts, over all task attempts of the run
    vendors = report.get("vendors")
    assert vendors, f"the report has no per-vendor rows: {sorted(report)}"
    for service, name in VENDORS.items():
        stats, row = chaos.sb.stats(service), vendors[name]
        assert row["requests"] == arrivals(stats), (name, row, stats["requests_by_status"])
        assert row["rate_limited_429"] == stats["requests_by_status"].get("429", 0), (name, row, stats)
        # every unusable answer (injected fault or real 429) either made the client retry or ended its call
        # in an error (retries exhausted, or a lost answer the client must not re-send: the sender then asked
        # the Profile API); so did each of the vendor's own 404 answers (Profile API probes of users Insider
        # does not hold; a 404 a fault held is counted by the sandbox as the fault, under "404_held"). Failed
        # attempts store their counters too, so nothing is subtracted, and the client invents no failure.
        # A usable held answer the sandbox sent to a still-connected client may still have reached it after
        # its own read timeout fired (the sandbox cannot see that race), so each may count either way.
        not_found = stats["requests_by_status"].get("404", 0)
        counted, unusable = row["retries"] + row["failures"], failed_answers(stats) + not_found
        assert unusable <= counted <= unusable + stats["held_usable_answers_delivered"], (
            name,
            row,
            stats["faults_injected"],
            stats["held_answers_delivered"],
            stats["held_usable_answers_delivered"],
            stats["requests_by_status"],
        )
        assert row["ambiguous"] <= row["failures"], row


def test_killed_upsert_under_faults_is_retried_without_duplicates_or_losses(chaos):
    chaos.api.wait_for_dag(DAG)
    chaos.api.unpause(DAG)
    httpx.post(f"{chaos.sb.insightiq_url}/_sandbox/mutate", json={"fraction": 1.0}).raise_for_status()
    # a fixed latency (not a fault: the fault mix stays the same) so the upsert is still running when killed
    chaos.sb.configure("insider", {"latency_seconds": 0.4})
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    run_id = chaos.api.trigger(DAG, logical_date=(day + timedelta(seconds=1)).isoformat())
    ti = chaos.running_upsert_mid_batch(run_id, upserts=2)
    os.kill(ti["pid"], signal.SIGKILL)
    chaos.sb.configure("insider", {"latency_seconds": 0.0})

    assert chaos.wait_for_run(run_id) == "success", chaos.api.task_states(DAG, run_id)
    ti = next(t for t in chaos.api.task_instances(DAG, run_id) if t["task_id"] == "upsert")
    assert ti["try_number"] >= 2
    report = assert_exactly_once(chaos, run_id)
    assert report["sent"] > 0, report
    assert_no_secrets(chaos, [r["dag_run_id"] for r in chaos.api.runs(DAG)])
