"""Scale: one creator_sync run over a large fleet (full: 100,000 creators) under the real scheduler, with the
peak memory of every task process.

Same stack as the e2e section (devtools.bench.e2e): a throw-away `airflow standalone`, pools imported from a
temp config dir whose InsightIQ limit is raised to ``insightiq_rate`` (and the sandbox's limit raised to
match), the shared file rate-limit budget, no cron runs. Wall = the run's REST start_date..end_date. Memory:
devtools.bench.rss.TaskMemorySampler over the stack's process tree, each task process attributed to its task
instance by the id in its process title.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.bench.e2e import DAG_ID, _iso, _one_run, raised_config_dir
from devtools.bench.rss import ROLE_SUPERVISOR, ROLE_TASK, TaskMemorySampler, attribute_peaks, largest

RSS_LIMIT_MB = 1024


def task_names(api, run_id: str) -> dict[str, str]:
    """{task instance id: "task_id" or "task_id[map_index]"} of one run."""
    return {
        ti["id"]: ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        for ti in api.task_instances(DAG_ID, run_id)
    }


def _log_peaks(sampler: TaskMemorySampler, every_s: float = 60) -> None:
    """Every minute, the peaks so far on stderr: a long run that is interrupted still leaves its evidence."""
    began = time.monotonic()
    while not sampler.stopped.wait(every_s):
        peaks = {ti[-12:]: round(b / 2**20) for (role, ti), b in sampler.peaks.items() if role == ROLE_TASK}
        print(f"[scale {time.monotonic() - began:.0f} s] task peak RSS MB by ti id: {peaks}", file=sys.stderr)


def run_scale(
    creators: int = 100_000,
    insightiq_rate: float = 500,
    *,
    run_timeout: float = 3600,
    sample_interval_s: float = 0.2,
    keep_home: bool = False,
) -> dict[str, Any]:
    from creator_sync.settings import CONFIG_DIR_ENV
    from devtools.airflow_stack import AirflowStack, sandbox_connections
    from devtools.bench.fetch import sandbox_summary
    from devtools.sandbox.inspection import limit_violations
    from devtools.sandbox.launcher import SandboxServers

    root = Path(tempfile.mkdtemp(prefix="creator-sync-bench-scale-"))
    config = raised_config_dir(root / "config", insightiq_rate)
    result: dict[str, Any] = {"creators": creators, "insightiq_rate": insightiq_rate, "home": str(root)}
    try:
        began = time.perf_counter()
        with SandboxServers(
            creators=creators, extra_args=["--insightiq-rate", str(insightiq_rate)], startup_timeout=600
        ) as sb:
            result["sandbox_start_s"] = round(time.perf_counter() - began, 1)
            home = root / "airflow"
            env = {
                **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
                "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rl'}",
                CONFIG_DIR_ENV: str(config),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run triggered here
            }
            stack = AirflowStack(home, extra_env=env)
            sampler = None
            try:
                began = time.perf_counter()
                stack.start(timeout=600)
                stack.airflow("pools", "import", str(config / "pools.json"))
                api = stack.api
                api.wait_for_dag(DAG_ID)
                api.unpause(DAG_ID)
                result["airflow_start_s"] = round(time.perf_counter() - began, 1)
                assert stack.process is not None
                sampler = TaskMemorySampler(stack.process.pid, sample_interval_s).start()
                progress = threading.Thread(target=_log_peaks, args=(sampler,), daemon=True)
                progress.start()
                hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                run = _one_run(api, _iso(hour - timedelta(hours=1)), run_timeout)
                peaks = sampler.stop()
                names = task_names(api, run["run_id"])
                iq = sandbox_summary(sb.stats("insightiq"))
                insider = sb.stats("insider")
            finally:
                if sampler is not None:
                    sampler.stop()
                stack.stop()
    finally:
        if not keep_home:
            shutil.rmtree(root, ignore_errors=True)
    tasks_mb = attribute_peaks(peaks, names)
    supervisors_mb = attribute_peaks(peaks, names, ROLE_SUPERVISOR)
    peak_task, peak_mb = largest(tasks_mb)
    result.update(
        {
            "run": {k: v for k, v in run.items() if k != "tasks"},
            "state": run["state"],
            "wall_s": run["wall_s"],
            "task_durations_s": {name: ti.get("duration") for name, ti in run["tasks"].items()},
            "task_peak_rss_mb": tasks_mb,
            "supervisor_peak_rss_mb": supervisors_mb,
            "peak_rss_mb": peak_mb,
            "peak_rss_task": peak_task,
            "rss_samples": sampler.samples,
            "rss_tasks_sampled": len(tasks_mb),
            "tasks_in_run": len(names),
            "sandbox_insightiq_accepted": iq["accepted"],
            "sandbox_insightiq_429s": iq["rate_limited_429s"],
            "sandbox_limit_violations": iq["limit_violations"] + limit_violations(insider),
            "sandbox_upsert_requests": int(insider["upsert_requests"]),
            "insider_users_stored": int(insider["users_stored"]),
        }
    )
    if run["state"] != "success":
        raise RuntimeError(
            f"creator_sync over {creators} creators {run['state']}: {run.get('task_states')} "
            f"(task peaks MB: {json.dumps(tasks_mb)})"
        )
    report = run["report"]
    result.update(
        {
            "insightiq_requests": int(report["insightiq_requests"]),
            "upsert_requests": int(report["insider_requests"]),
            "reconciled": report.get("reconciled"),
            "fetched_creators": report.get("fetched_creators"),
            "sent": report.get("sent"),
        }
    )
    return result
