"""Webhook -> Insider latency: how long after a creator changes at InsightIQ the new value is at Insider One.

Setup: sandboxes with ``creators`` creators, a throw-away `airflow standalone` whose API server mounts the
webhook receiver (CREATOR_SYNC_WEBHOOK_DEBOUNCE_S = ``debounce_s``), our webhook registered at the InsightIQ
sandbox by the real ``insightiq_webhooks_setup`` DAG, and one full creator_sync run first (InsightIQ limit
raised to ``baseline_rate`` for it), so Insider and the sync state hold the whole fleet, as in production.
Then the InsightIQ limit goes back to the documented rate (sandbox and client config) for the measurement.

Measurement: changes at ``fraction_per_hour`` of the fleet, times ``compression`` (see change_schedule),
evenly spread over ``window_s``. Each change is ``POST /_sandbox/mutate {"user_ids": [one creator],
"kinds": ["profiles"]}`` on a creator stored at Insider: the sandbox bumps the creator's profile counts and
sends the signed ``PROFILES.UPDATED`` webhook per account right away. A poller asks the Insider sandbox
(``/_sandbox/users/lookup``) every ``poll_s`` whether each changed creator's attributes differ from before
the change; latency = first poll that sees the new attributes - the time the mutate request was sent (so
it includes webhook delivery, the debounce, the queue behind a running webhook run, and the run). A change
not visible ``drain_s`` after the last change is a failure and is reported, never dropped.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.bench.e2e import DAG_ID, _iso, _one_run, _parse_ts, _task_durations
from devtools.bench.results import percentile

DOCUMENTED_POOL = "insightiq_api"


def change_schedule(
    fleet: int, fraction_per_hour: float, window_s: float, compression: float = 1.0
) -> list[float]:
    """Offsets (s from the window start) of the changes: ``fleet x fraction_per_hour`` changes an hour,
    ``compression`` times faster, in ``window_s`` seconds, evenly spread (the i-th at (i + 0.5) x spacing).

    E.g. 100,000 creators at 1 %/h over 300 s: 83 changes, one every 3.6 s; 10,000 creators with
    compression 10: the same 83 (the full fleet's absolute change rate on a tenth of the fleet)."""
    if fleet <= 0 or fraction_per_hour <= 0 or window_s <= 0 or compression <= 0:
        raise ValueError("fleet, fraction_per_hour, window_s and compression must be positive")
    count = round(fleet * fraction_per_hour * compression * window_s / 3600)
    if count == 0:
        raise ValueError(
            f"{fleet} creators at {fraction_per_hour:.2%}/h make no change in {window_s:g} s; "
            "raise the window or the compression"
        )
    spacing = window_s / count
    return [(i + 0.5) * spacing for i in range(count)]


def median_task_durations(runs: list[dict[str, dict[str, Any]]]) -> dict[str, float | None]:
    """Median duration (s) per task over several runs' task instances ({name: {"duration": s}}); mapped
    instances ("fetch_account_shard[2]") count under their task ("fetch_account_shard[*]")."""
    by_task: dict[str, list[float]] = {}
    for tasks in runs:
        for name, ti in tasks.items():
            key = name.split("[", 1)[0] + ("[*]" if "[" in name else "")
            if ti.get("duration") is not None:
                by_task.setdefault(key, []).append(float(ti["duration"]))
    return {name: percentile(values, 50) for name, values in sorted(by_task.items())}


class Watcher:
    """Polls the Insider sandbox for the changed creators until each shows attributes other than before."""

    def __init__(self, sb, poll_s: float = 0.5) -> None:
        self.sb, self.poll_s = sb, poll_s
        self.pending: dict[str, tuple[float, dict]] = {}  # uuid -> (change sent at, attributes before)
        self.seen: dict[str, float] = {}  # uuid -> latency s
        self.poll_errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="insider-watcher", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def expect(self, uuid: str, sent_at: float, before: dict) -> None:
        with self._lock:
            self.pending[uuid] = (sent_at, before)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = dict(self.pending)
            if waiting:
                try:
                    found = self.sb.insider_lookup(sorted(waiting))
                except httpx.HTTPError:
                    self.poll_errors += 1
                    found = {}
                now = time.time()
                with self._lock:
                    for uuid, user in found.items():
                        sent_at, before = waiting[uuid]
                        if user is not None and user.get("attributes") != before:
                            self.seen[uuid] = now - sent_at
                            self.pending.pop(uuid, None)
            self._stop.wait(self.poll_s)


def _set_rate(sb, config: Path, rate: float) -> None:
    """The InsightIQ limit, at the sandbox and in the client config the tasks read (pools.json)."""
    sb.configure("insightiq", {"limits": {"requests": {"rate": rate}}})
    pools_path = config / "pools.json"
    pools = json.loads(pools_path.read_text())
    pools[DOCUMENTED_POOL]["rate_limit"]["requests"] = rate
    pools[DOCUMENTED_POOL]["rate_limit"]["per_seconds"] = 1
    pools_path.write_text(json.dumps(pools, indent=2))


def _ok(stats: dict) -> int:
    return int((stats.get("requests_by_status") or {}).get("200", 0))


def _webhook_runs(api) -> list[dict[str, Any]]:
    from creator_sync.webhooks.coalesce import RUN_ID_PREFIX

    body = api._call("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1000})
    out = []
    for run in body["dag_runs"]:
        if not run["dag_run_id"].startswith(RUN_ID_PREFIX):
            continue
        wall = None
        if run.get("start_date") and run.get("end_date"):
            wall = (_parse_ts(run["end_date"]) - _parse_ts(run["start_date"])).total_seconds()
        queued = None
        if run.get("queued_at") and run.get("start_date"):
            queued = (_parse_ts(run["start_date"]) - _parse_ts(run["queued_at"])).total_seconds()
        accounts = len((run.get("conf") or {}).get("account_ids") or [])
        out.append(
            {"run_id": run["dag_run_id"], "state": run["state"], "wall_s": wall, "queued_s": queued}
            | {"accounts": accounts}
        )
    return out


def run_webhook_latency(
    creators: int = 100_000,
    *,
    fraction_per_hour: float = 0.01,
    compression: float = 1.0,
    window_s: float = 300,
    debounce_s: float | None = None,
    baseline_rate: float = 500,
    measure_rate: float | None = None,
    poll_s: float = 0.5,
    drain_s: float = 240,
    seed: int = 7,
    scale: bool = False,
    keep_home: bool = False,
) -> dict[str, Any]:
    """``scale``: the baseline run is also the scale section's run (devtools.bench.scale.sampled_run: task
    memory sampled, its figures in result["scale"]), so the full bench starts one large fleet, not two."""
    from creator_sync.limits import rate_limit
    from creator_sync.webhooks.app import DEFAULT_DEBOUNCE_S
    from devtools.bench.scale import sampled_run
    from devtools.bench.stack import bench_stack
    from devtools.webhook_setup import register_webhook

    debounce_s = DEFAULT_DEBOUNCE_S if debounce_s is None else debounce_s
    measure_rate = measure_rate or rate_limit(DOCUMENTED_POOL).limit  # the packaged (documented) limit
    offsets = change_schedule(creators, fraction_per_hour, window_s, compression)
    root = Path(tempfile.mkdtemp(prefix="creator-sync-bench-webhooks-"))
    result: dict[str, Any] = {
        "creators": creators,
        "debounce_s": debounce_s,
        "fraction_per_hour": fraction_per_hour,
        "compression": compression,
        "window_s": window_s,
        "changes_planned": len(offsets),
        "change_spacing_s": round(window_s / len(offsets), 2),
        "baseline_rate": baseline_rate,
        "measure_rate": measure_rate,
        "poll_s": poll_s,
    }
    watcher: Watcher | None = None
    try:
        with bench_stack(root, creators, baseline_rate, debounce_s=debounce_s) as bs:
            sb, api, config = bs.sandboxes, bs.api, bs.config
            try:
                register_webhook(api)
                if scale:  # the baseline run is the scale section's run: sampled, its figures kept
                    result["scale"] = {"insightiq_rate": baseline_rate, **bs.timings}
                    result["scale"].update(sampled_run(bs, creators, run_timeout=3600))
                    baseline = result["scale"]["run"]
                else:
                    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                    baseline = _one_run(api, _iso(hour - timedelta(hours=1)), timeout=3600)
                result["baseline"] = {k: v for k, v in baseline.items() if k != "tasks"}
                if baseline["state"] != "success":
                    raise RuntimeError(f"baseline creator_sync run {baseline['state']}")
                _set_rate(sb, config, measure_rate)
                before = {
                    u["identifiers"]["uuid"]: u.get("attributes") or {}
                    for u in sb.insider_users()
                    if "uuid" in u.get("identifiers", {})
                }
                result["insider_users_before"] = len(before)
                chosen = random.Random(seed).sample(sorted(before), len(offsets))
                iq_before = sb.stats("insightiq")
                watcher = Watcher(sb, poll_s).start()
                start = time.time()
                sent: dict[str, float] = {}
                for offset, uuid in zip(offsets, chosen, strict=True):
                    time.sleep(max(0.0, start + offset - time.time()))
                    sent_at = time.time()
                    watcher.expect(uuid, sent_at, before[uuid])
                    httpx.post(
                        f"{sb.insightiq_url}/_sandbox/mutate",
                        json={"user_ids": [uuid], "kinds": ["profiles"]},
                        timeout=30,
                    ).raise_for_status()
                    sent[uuid] = sent_at
                deadline = time.time() + drain_s
                while watcher.pending and time.time() < deadline:
                    time.sleep(1)
                watcher.stop()
                iq_after = sb.stats("insightiq")
                runs = _webhook_runs(api)
                run_tasks = [_task_durations(api, r["run_id"]) for r in runs if r["wall_s"] is not None]
            finally:
                if watcher is not None:
                    watcher.stop()
    finally:
        if not keep_home:
            shutil.rmtree(root, ignore_errors=True)
    latencies = sorted(watcher.seen.values())
    missing = sorted(set(sent) - set(watcher.seen))
    deliveries = iq_after.get("webhook_deliveries") or {}
    done = [r for r in runs if r["wall_s"] is not None]
    result.update(
        {
            "changes_sent": len(sent),
            "changes_measured": len(latencies),
            "changes_never_visible": len(missing),
            "never_visible_uuids": missing[:20],
            "p50_s": percentile(latencies, 50),
            "p95_s": percentile(latencies, 95),
            "max_s": latencies[-1] if latencies else None,
            "min_s": latencies[0] if latencies else None,
            "webhook_deliveries": deliveries,
            "webhook_runs": len(runs),
            "webhook_runs_failed": sum(1 for r in runs if r["state"] == "failed"),
            "webhook_run_wall_p50_s": percentile([r["wall_s"] for r in done], 50),
            "webhook_run_wall_max_s": max((r["wall_s"] for r in done), default=None),
            "webhook_run_queued_p50_s": percentile([r["queued_s"] for r in done if r["queued_s"]], 50),
            "webhook_run_accounts": [r["accounts"] for r in runs],
            "webhook_run_task_median_s": median_task_durations(run_tasks),
            "insightiq_200s_during": _ok(iq_after) - _ok(iq_before),
            "insightiq_429s_during": iq_after["rate_limited_429s"] - iq_before["rate_limited_429s"],
            "watcher_poll_errors": watcher.poll_errors,
        }
    )
    return result
