"""Scale: one creator_sync run over a large fleet (full: 100,000 creators) under the real scheduler, with the
peak memory of every task process.

The stack of every Airflow bench section (devtools.bench.stack.bench_stack) with the InsightIQ limit raised to
``insightiq_rate``. Wall = the run's REST start_date..end_date. Memory:
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

from devtools.bench.e2e import DAG_ID, _iso, _one_run
from devtools.bench.rss import ROLE_SUPERVISOR, ROLE_TASK, TaskMemorySampler, attribute_peaks, largest
from devtools.bench.stack import BenchStack, bench_stack

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
    root = Path(tempfile.mkdtemp(prefix="creator-sync-bench-scale-"))
    result: dict[str, Any] = {"creators": creators, "insightiq_rate": insightiq_rate, "home": str(root)}
    try:
        with bench_stack(root, creators, insightiq_rate) as bs:
            result.update(bs.timings)
            result.update(sampled_run(bs, creators, run_timeout, sample_interval_s))
    finally:
        if not keep_home:
            shutil.rmtree(root, ignore_errors=True)
    return result


def sampled_run(bs: BenchStack, creators: int, run_timeout: float, sample_interval_s: float = 0.2) -> dict:
    """One creator_sync run of the last complete hour on ``bs`` with every task process's memory sampled;
    the section's figures (scale_figures). The sandboxes' counters are read right after the run."""
    from devtools.bench.fetch import sandbox_summary

    assert bs.stack.process is not None
    sampler = TaskMemorySampler(bs.stack.process.pid, sample_interval_s).start()
    try:
        threading.Thread(target=_log_peaks, args=(sampler,), daemon=True).start()
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        run = _one_run(bs.api, _iso(hour - timedelta(hours=1)), run_timeout)
    finally:
        sampler.stop()
    names = task_names(bs.api, run["run_id"])
    iq = sandbox_summary(bs.sandboxes.stats("insightiq"))
    return scale_figures(creators, run, sampler, names, iq, bs.sandboxes.stats("insider"))


def scale_figures(
    creators: int,
    run: dict[str, Any],
    sampler: TaskMemorySampler,
    names: dict[str, str],
    iq: dict,
    insider: dict,
) -> dict[str, Any]:
    """The section's figures from one finished run: wall, per-task peak memory, requests, reconciliation.
    Raises when the run did not succeed (its task states and the memory seen so far in the message)."""
    from devtools.sandbox.inspection import limit_violations

    peaks = dict(sampler.peaks)
    tasks_mb = attribute_peaks(peaks, names)
    supervisors_mb = attribute_peaks(peaks, names, ROLE_SUPERVISOR)
    peak_task, peak_mb = largest(tasks_mb)
    result: dict[str, Any] = {
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
        "rss_hwm_resets": sampler.hwm_resets,
        "rss_hwm_resets_failed": sampler.hwm_resets_failed,
        "tasks_in_run": len(names),
        "sandbox_insightiq_accepted": iq["accepted"],
        "sandbox_insightiq_429s": iq["rate_limited_429s"],
        "sandbox_limit_violations": iq["limit_violations"] + limit_violations(insider),
        "sandbox_upsert_requests": int(insider["upsert_requests"]),
        "insider_users_stored": int(insider["users_stored"]),
    }
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
