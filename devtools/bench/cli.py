"""`python -m devtools.bench [--quick]`: run every benchmark, print the table, write bench-results.json.

Each section runs alone (no two measurements overlap on the 2-core machine); a section that fails leaves its
keys null and records `<section>_error`, the others still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from creator_sync.http.limiter.config import MARGIN_ENV
from devtools.bench.results import build_results, render_table, write_results

REPO = Path(__file__).resolve().parents[2]

# (quick, full)
SIZES = {
    "fetch_creators": (350, 2500),
    "upsert_users": (25_000, 25_000),
    "transform_rows_small": (100_000, 100_000),
    "transform_rows": (1_000_000, 1_000_000),
    # and 10x that: quick 10k / 100k, full 100k / 1M (the transform and the snapshot merge)
    "transform_creators": (10_000, 100_000),
    "e2e_creators": (2000, 2000),
    "e2e_insightiq_rate": (50, 10),  # quick: raised so it fits 5 min; full: the documented limit
    "sandbox_start_creators": (100_000, 100_000),
    "dag_parse_repeats": (3, 10),
    "backfill_creators": (2000, 10_000),
    "backfill_days": (7, 30),
    "scale_creators": (10_000, 100_000),
    "scale_insightiq_rate": (500, 1000),  # raised so the run takes minutes, the client config to match
    "webhook_creators": (10_000, 100_000),
    # changes at 1 %/h of the fleet; quick: 10x faster on a tenth of the fleet = the full run's absolute rate
    "webhook_compression": (10, 1),
    "webhook_window_s": (300, 300),
    # users in the state store bench (x 30 ledger events each); the _1m keys project to 1,000,000 users
    "state_users": (20_000, 100_000),
}
SCALE_KEYS = (
    "wall_s",
    "peak_rss_mb",
    "peak_rss_task",
    "insightiq_requests",
    "upsert_requests",
    "reconciled",
    "task_durations_s",
    "task_peak_rss_mb",
    "supervisor_peak_rss_mb",
    "insightiq_rate",
    "sent",
    "fetched_creators",
    "sandbox_insightiq_429s",
    "sandbox_limit_violations",
    "airflow_start_s",
)
STATE_KEYS = (
    "plan_s",
    "plan_s_1m",
    "claim_s_1m",
    "record_s_1m",
    "renew_s_1m",
    "retention_s_1m",
    "state_s_1m",
    "plan_cpu_s",
    "plan_cpu_s_1m",
    "record_cpu_s_1m",
    "state_cpu_s_1m",
    "load_average_start",
    "fill_s",
)
WEBHOOK_KEYS = (
    "creators",
    "debounce_s",
    "changes_sent",
    "changes_measured",
    "changes_never_visible",
    "never_visible_uuids",
    "max_s",
    "min_s",
    "fraction_per_hour",
    "compression",
    "window_s",
    "change_spacing_s",
    "measure_rate",
    "webhook_runs",
    "webhook_runs_failed",
    "webhook_run_wall_p50_s",
    "webhook_run_wall_max_s",
    "webhook_run_queued_p50_s",
    "webhook_run_task_median_s",
    "webhook_run_accounts",
    "webhook_deliveries",
    "insightiq_200s_during",
    "insightiq_429s_during",
    "insider_users_before",
)
INSIGHTIQ_LIMIT = (
    10.0  # include/creator_sync/resources/pools.json and the sandbox default: 10 requests per 1 s window
)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for the block (the hooks read the limiter settings when built)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "machine": f"{os.cpu_count()} cpu, {cpu or platform.processor()}, {mem_gb} GiB RAM",
        "python": platform.python_version(),
    }


def limiter_settings() -> dict[str, float]:
    """The margin and burst every limiter of this run uses (environment or the shipped defaults)."""
    from creator_sync.http.limiter.config import burst, margin

    return {"margin": margin(), "burst": burst()}


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self) -> None:
        self.measured: dict[str, Any] = {}
        self.details: dict[str, Any] = {}

    def section(self, name: str, fn) -> None:
        _log(f"{name} ...")
        began = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # keep going: one broken section must not hide the others
            self.measured[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:500]
            _log(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
        self.measured[f"{name}_section_s"] = round(time.perf_counter() - began, 1)
        _log(f"{name} done in {time.perf_counter() - began:.1f}s")


def run(quick: bool, only: set[str] | None = None) -> dict[str, Any]:
    pick = 0 if quick else 1
    size = {k: v[pick] for k, v in SIZES.items()}
    r = Runner()
    m = r.measured
    want = (lambda name: True) if not only else (lambda name: name in only)

    from devtools.connections import connection_envs, sandbox_hosts
    from devtools.sandbox.launcher import SandboxServers

    def fetch_and_upsert() -> None:
        from devtools.bench import fetch, upsert

        with SandboxServers(creators=size["fetch_creators"], seed=42) as sb:
            os.environ.update(connection_envs(sandbox_hosts(sb)))
            m["fetch_creators"] = size["fetch_creators"]
            if want("fetch"):
                with tempfile.TemporaryDirectory(prefix="bench-rl-") as rl:
                    shared = fetch.run_hooks(sb, f"file://{rl}", limit_per_s=INSIGHTIQ_LIMIT)
                # the same job with the margin cut to the sandbox's measured loopback jitter (10 ms): what the
                # limiter reaches when the margin only has to cover this machine, not a remote vendor
                with tempfile.TemporaryDirectory(prefix="bench-rl-") as rl, _env(MARGIN_ENV, "0.01"):
                    tight = fetch.run_hooks(sb, f"file://{rl}", limit_per_s=INSIGHTIQ_LIMIT)
                split = fetch.run_hooks(sb, "local", limit_per_s=INSIGHTIQ_LIMIT)
                base = fetch.run_baseline(sb, limit_per_s=INSIGHTIQ_LIMIT)
                m.update(
                    {
                        "fetch_utilisation": shared["utilisation"],
                        "fetch_over_limit_windows": shared["windows_over_limit"],
                        "fetch_429s": shared["rate_limited_429s"],
                        "fetch_requests_into_full_window": shared["requests_into_full_window"],
                        "fetch_max_in_window": shared["max_in_window"],
                        "fetch_max_in_any_1s": shared["max_in_any_window"],
                        "fetch_send_to_arrival_ms": shared["send_to_arrival_ms"],
                        "fetch_send_to_arrival_drop_ms": shared["send_to_arrival_ms"].get("drop"),
                        "fetch_send_to_arrival_spread_ms": shared["send_to_arrival_ms"].get("spread"),
                        "fetch_margin": limiter_settings()["margin"],
                        "fetch_burst": limiter_settings()["burst"],
                        "fetch_requests": shared["accepted"],
                        "fetch_seconds": shared["seconds"],
                        "fetch_items": shared["items"],
                        "fetch_utilisation_margin_1pct": tight["utilisation"],
                        "fetch_429s_margin_1pct": tight["rate_limited_429s"],
                        "fetch_requests_into_full_window_margin_1pct": tight["requests_into_full_window"],
                        "fetch_max_in_any_1s_margin_1pct": tight["max_in_any_window"],
                        "fetch_utilisation_split": split["utilisation"],
                        "fetch_over_limit_windows_split": split["windows_over_limit"],
                        "fetch_429s_split": split["rate_limited_429s"],
                        "fetch_requests_into_full_window_split": split["requests_into_full_window"],
                        "fetch_seconds_split": split["seconds"],
                        "fetch_utilisation_baseline": base["utilisation"],
                        "fetch_429s_baseline": base["rate_limited_429s"],
                        "fetch_requests_into_full_window_baseline": base["requests_into_full_window"],
                        "fetch_over_limit_windows_baseline": base["windows_over_limit"],
                        "fetch_seconds_baseline": base["seconds"],
                    }
                )
            if want("upsert"):
                up = upsert.run_upsert(sb, size["upsert_users"])
                m.update(
                    {
                        "upsert_request_ratio": up["ratio"],
                        "upsert_users": up["users"],
                        "upsert_requests": up["requests"],
                        "upsert_accepted": up["accepted"],
                        "upsert_seconds": up["seconds"],
                    }
                )

    def transform() -> None:
        from devtools.bench.local import (
            run_snapshot_merge,
            run_transform,
            run_transform_creators,
            snapshot_merge_memory,
            transform_memory,
        )

        small = run_transform(size["transform_rows_small"])
        big = run_transform(size["transform_rows"])
        m.update(
            {
                "transform_rows_per_s": big["rows_per_s"],
                "transform_rows": big["rows"],
                "transform_rows_per_s_100k": small["rows_per_s"],
                "transform_rows_peak_rss_mb_100k": small["peak_rss_mb"],
                "transform_rows_peak_rss_mb_1m": big["peak_rss_mb"],
                "transform_rows_rss_ratio": (
                    big["peak_rss_mb"] / small["peak_rss_mb"] if small["peak_rss_mb"] else None
                ),
            }
        )
        creators = size["transform_creators"]
        m.update(transform_memory(run_transform_creators(creators), run_transform_creators(10 * creators)))
        # the transform task's other step: the hourly run's directory merge, at the same sizes
        m.update(snapshot_merge_memory(run_snapshot_merge(creators), run_snapshot_merge(10 * creators)))
        # and a full read's directory step (the first run: no snapshot yet)
        full = [run_snapshot_merge(n, full_read=True) for n in (creators, 10 * creators)]
        m.update(snapshot_merge_memory(*full, prefix="snapshot_merge_full_read"))

    def e2e() -> None:
        from devtools.bench.e2e import run_e2e

        res = run_e2e(size["e2e_creators"], size["e2e_insightiq_rate"])
        m.update(
            {
                "e2e_bound_ratio": res["bound_ratio"],
                "e2e_airflow_overhead_s": res["overhead_s"],
                "e2e_wall_s": res["wall_s"],
                "e2e_bound_s": res["bound_s"],
                "e2e_creators": res["creators"],
                "e2e_insightiq_rate": res["insightiq_rate"],
                "e2e_insightiq_requests": res["insightiq_requests"],
                "e2e_upsert_requests": res["upsert_requests"],
                "e2e_sandbox_429s": res["sandbox_insightiq_429s"],
                "e2e_sandbox_over_limit_windows": res["sandbox_insightiq_over_limit_windows"],
                "e2e_airflow_start_s": res.get("airflow_start_s"),
                "e2e_execution_api_warmup_s": res.get("execution_api_warmup_s"),
                "e2e_fetch_phase_s": res.get("fetch_phase_s"),
                "e2e_after_fetch_s": res.get("after_fetch_s"),
                "e2e_task_timeline": res.get("timeline"),
                "e2e_margin": limiter_settings()["margin"],
                "e2e_burst": limiter_settings()["burst"],
                "insightiq_requests_per_creator": res["requests_per_creator"],
                "incremental_send_ratio": res.get("incremental_send_ratio"),
                "incremental_sent_first": res.get("sent_first"),
                "incremental_sent_second": res.get("sent_second"),
                "incremental_unchanged_second": res.get("unchanged_second"),
                "incremental_second_wall_s": res.get("second_wall_s"),
                "incremental_interval": "next data interval (hour after the first run's)",
                "incremental_events_sent_second": (res.get("second") or {})
                .get("report", {})
                .get("events_sent"),
                "e2e_data_interval": res["first"].get("data_interval"),
            }
        )

    def state() -> None:
        from devtools.bench.local import run_state_store
        from devtools.celery_stack import postgres_unavailable

        backends = ["sqlite"] if postgres_unavailable() else ["sqlite", "postgresql"]
        for backend in backends:
            res = run_state_store(backend, size["state_users"])
            m.update({f"state_{k}_{backend}": res[k] for k in STATE_KEYS if k in res})
        m["state_users"] = size["state_users"]
        m["state_ledger_rows"] = size["state_users"] * 30

    def dag_parse() -> None:
        from devtools.bench.local import run_dag_parse

        res = run_dag_parse(size["dag_parse_repeats"])
        m["dag_parse_s_max"] = res["max_s"]
        m["dag_parse_slowest_file"] = res["slowest_file"]
        m["dag_parse_first_s_max"] = max(f["first_s"] for f in res["files"].values())
        m["dag_parse_method"] = f"DagBag per file, warm process, median of {size['dag_parse_repeats']}"

    def sandbox_start() -> None:
        from devtools.bench.local import run_sandbox_start

        res = run_sandbox_start(size["sandbox_start_creators"])
        m["sandbox_start_s_100k"] = res["seconds_to_first_page"]
        m["sandbox_start_listening_s_100k"] = res["seconds_to_listening"]
        m["sandbox_rss_mb_100k"] = res["server_rss_mb"]

    def requests_sim() -> None:
        from devtools.bench.requests_sim import simulate

        m.update(simulate())

    def backfill() -> None:
        from devtools.bench.backfill import run_backfill

        m.update(run_backfill(size["backfill_creators"], size["backfill_days"]))

    def scale_figures(res: dict[str, Any]) -> None:
        m.update({f"e2e_100k_{k}": res.get(k) for k in SCALE_KEYS})
        m["e2e_100k_creators"] = res["creators"]  # the key names say 100k; this says what ran

    def scale() -> None:
        from devtools.bench.scale import run_scale

        res = run_scale(size["scale_creators"], size["scale_insightiq_rate"])
        scale_figures(res)

    def webhook_figures(res: dict[str, Any]) -> None:
        m.update({k if k.startswith("webhook_") else f"webhook_{k}": res.get(k) for k in WEBHOOK_KEYS})
        m["webhook_to_insider_p50_s"], m["webhook_to_insider_p95_s"] = res["p50_s"], res["p95_s"]

    def webhook_latency(with_scale: bool = False) -> None:
        from devtools.bench.webhook_latency import run_webhook_latency

        res = run_webhook_latency(
            size["webhook_creators"],
            compression=size["webhook_compression"],
            window_s=size["webhook_window_s"],
            **({"baseline_rate": size["scale_insightiq_rate"], "scale": True} if with_scale else {}),
        )
        if with_scale:
            scale_figures({**res["scale"], "creators": res["creators"]})
        webhook_figures(res)

    # Both sections need the same large fleet synced once: together, the webhook section's baseline run
    # is the scale section's sampled run (one fleet started and synced, not two).
    same_fleet = size["scale_creators"] == size["webhook_creators"]
    together = want("scale") and want("webhook_latency") and same_fleet
    sections = [
        ("requests_sim", requests_sim),
        ("backfill", backfill),
        ("fetch", fetch_and_upsert),
        ("transform", transform),
        ("state", state),
        ("dag_parse", dag_parse),
        ("sandbox_start", sandbox_start),
        ("e2e", e2e),
        ("scale", scale),
        ("webhook_latency", webhook_latency),
    ]
    for name, fn in sections:
        if name == "fetch" and (want("fetch") or want("upsert")):
            r.section("fetch_upsert", fn)
        elif name == "scale" and together:
            r.section("scale_webhook_latency", lambda: webhook_latency(with_scale=True))
        elif name == "webhook_latency" and together:
            continue
        elif want(name):
            r.section(name, fn)
    return m


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller fetch job, fewer parse repeats")
    parser.add_argument(
        "--only",
        default="",
        help="comma list: requests_sim,backfill,fetch,upsert,transform,state,dag_parse,sandbox_start,e2e,"
        "scale,webhook_latency",
    )
    parser.add_argument("--output", default=str(REPO / "bench-results.json"))
    args = parser.parse_args(argv)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so sandboxes and the Airflow stack get stopped
    signal.signal(signal.SIGTERM, _interrupt)
    # never touch a developer's Airflow home: every Airflow import in this process uses a temp one
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="creator-sync-bench-airflow-")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    began = time.perf_counter()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    measured = run(args.quick, only)
    context = {
        **machine(),
        "quick": args.quick,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (" QUICK=1" if args.quick else ""),
        "total_s": round(time.perf_counter() - began, 1),
    }
    results = build_results(measured, context)
    write_results(Path(args.output), results)
    print(render_table(results))
    print(f"\nwrote {args.output} ({context['total_s']} s)")
    return 0
