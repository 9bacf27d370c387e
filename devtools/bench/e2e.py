"""One creator_sync run (then a second after 1% of creators changed) under the real scheduler: a throw-away
`airflow standalone` (AirflowStack), pools in force, sandboxes with a raised InsightIQ limit and a matching
client config dir, the shared file rate-limit budget.

The wall time is the DAG run's start_date .. end_date from the REST API. The bound is what the vendor limits
allow for the requests the run made (results.rate_limit_bound_s).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.bench.results import bound_ratio, rate_limit_bound_s, task_timeline

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "creator_sync"


def raised_config_dir(target: Path, insightiq_rate: float) -> Path:
    """A copy of the config files whose pools.json allows ``insightiq_rate`` InsightIQ requests per second."""
    from creator_sync.settings import packaged_config_dir

    shutil.copytree(packaged_config_dir(), target)
    pools = json.loads((target / "pools.json").read_text())
    pools["insightiq_api"]["rate_limit"]["requests"] = insightiq_rate
    pools["insightiq_api"]["rate_limit"]["per_seconds"] = 1
    (target / "pools.json").write_text(json.dumps(pools, indent=2))
    return target


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _run_info(api, run_id: str) -> dict[str, Any]:
    return api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")


def _task_durations(api, run_id: str) -> dict[str, Any]:
    body = api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
    out = {}
    for ti in body["task_instances"]:
        name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        out[name] = {k: ti.get(k) for k in ("start_date", "end_date", "duration", "queued_when")}
    return out


def _one_run(api, logical_date: str | None, timeout: float) -> dict[str, Any]:
    run_id = api.trigger(DAG_ID, logical_date=logical_date)
    state = api.wait_for_run(DAG_ID, run_id, timeout=timeout)
    info = _run_info(api, run_id)
    tasks = _task_durations(api, run_id)
    out: dict[str, Any] = {
        "run_id": run_id,
        "state": state,
        "wall_s": (_parse_ts(info["end_date"]) - _parse_ts(info["start_date"])).total_seconds(),
        "data_interval": f"{info.get('data_interval_start')} .. {info.get('data_interval_end')}",
        "tasks": tasks,
        "timeline": task_timeline(tasks, info["start_date"]),
    }
    if state != "success":
        out["task_states"] = api.task_states(DAG_ID, run_id)
        return out
    out["report"] = {k: v for k, v in api.xcom(DAG_ID, run_id, "report").items() if k != "text"}
    return out


FETCH_TASKS = ("fetch_creators", "fetch_contents", "fetch_account_shard")


def phase_split(timeline: dict[str, dict[str, Any]], wall_s: float) -> dict[str, float | None]:
    """Where a run's wall time goes: ``fetch_phase_s`` = run start .. the last fetch task's end,
    ``after_fetch_s`` = the rest (transform, upsert, report and the scheduler between them)."""
    ends = [row["end"] for name, row in timeline.items() if name.startswith(FETCH_TASKS) and row["end"]]
    if not ends:
        return {"fetch_phase_s": None, "after_fetch_s": None}
    return {"fetch_phase_s": max(ends), "after_fetch_s": round(wall_s - max(ends), 2)}


def run_e2e(
    creators: int = 2000,
    insightiq_rate: float = 50,
    *,
    mutate_fraction: float = 0.01,
    run_timeout: float = 900,
    keep_home: bool = False,
) -> dict[str, Any]:
    from devtools.bench.fetch import sandbox_summary
    from devtools.bench.stack import bench_stack
    from devtools.sandbox.inspection import limit_violations

    root = Path(tempfile.mkdtemp(prefix="creator-sync-bench-e2e-"))
    result: dict[str, Any] = {"creators": creators, "insightiq_rate": insightiq_rate}
    timings: dict[str, float] = {}
    try:
        with bench_stack(root, creators, insightiq_rate) as bs:
            sb, api = bs.sandboxes, bs.api
            pools = json.loads((bs.config / "pools.json").read_text())
            upsert_limit = float(pools["insider_upsert"]["rate_limit"]["requests"])
            upsert_window = float(pools["insider_upsert"]["rate_limit"]["per_seconds"])
            timings["airflow_start_s"] = bs.timings["airflow_start_s"]
            timings["execution_api_warmup_s"] = bs.timings["execution_api_warmup_s"]
            # Run 1 syncs the hour before last, run 2 the last complete hour (the NEXT interval, as the
            # hourly schedule would): a second run of the same interval needs the same logical date,
            # which Airflow's unique constraint refuses, and a run without a logical date has no data
            # interval (SyncRun refuses it). So run 2 also sends the users with new content events in
            # its hour; result["second"]["report"]["events_sent"] shows how many events that was.
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            logical, logical_next = (_iso(hour - timedelta(hours=1)), _iso(hour))
            sb.reset()
            first = _one_run(api, logical, run_timeout)
            iq_first = sandbox_summary(sb.stats("insightiq"))
            insider_first = sb.stats("insider")
            mutated = (
                httpx.post(
                    f"{sb.insightiq_url}/_sandbox/mutate", json={"fraction": mutate_fraction}, timeout=60
                )
                .raise_for_status()
                .json()
            )
            second = _one_run(api, logical_next, run_timeout) if first["state"] == "success" else None
            insider_second = sb.stats("insider")
    finally:
        if not keep_home:
            shutil.rmtree(root, ignore_errors=True)
    result["first"] = first
    result["second"] = second
    result["mutated"] = mutated
    result.update(timings)
    result["same_interval"] = bool(second) and second["data_interval"] == first["data_interval"]
    if first["state"] != "success":
        raise RuntimeError(f"first creator_sync run {first['state']}: {first.get('task_states')}")
    report = first["report"]
    iq_requests = int(report["insightiq_requests"])
    upsert_requests = int(report["insider_requests"])
    bound = rate_limit_bound_s(iq_requests, insightiq_rate, upsert_requests, upsert_limit, upsert_window)
    result.update(
        {
            "wall_s": first["wall_s"],
            "bound_s": bound,
            "bound_ratio": bound_ratio(first["wall_s"], bound),
            "overhead_s": first["wall_s"] - bound,
            "insightiq_requests": iq_requests,
            "upsert_requests": upsert_requests,
            "sandbox_insightiq_accepted": iq_first["accepted"],
            "sandbox_insightiq_429s": iq_first["rate_limited_429s"],
            "sandbox_insightiq_over_limit_windows": iq_first["windows_over_limit"],
            "sandbox_limit_violations": iq_first["limit_violations"] + limit_violations(insider_first),
            "sandbox_upsert_requests": int(insider_first["upsert_requests"]),
            "fetched_creators": report.get("fetched_creators"),
            "requests_per_creator": iq_requests / creators,
            "sent_first": report.get("sent"),
            "timeline": first["timeline"],
            **phase_split(first["timeline"], first["wall_s"]),
        }
    )
    if second and second["state"] == "success":
        sent2 = second["report"].get("sent")
        result.update(
            {
                "sent_second": sent2,
                "unchanged_second": second["report"].get("unchanged"),
                "second_wall_s": second["wall_s"],
                "second_upsert_requests": int(insider_second["upsert_requests"])
                - int(insider_first["upsert_requests"]),
                "incremental_send_ratio": (sent2 / report["sent"]) if report.get("sent") else None,
            }
        )
    return result
