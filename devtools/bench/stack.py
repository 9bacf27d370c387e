"""The stack every Airflow bench section runs on: sandboxes (InsightIQ limit raised to ``insightiq_rate``),
a throw-away `airflow standalone` with the matching pools imported from a temp config dir, the shared file
rate-limit budget, no cron runs (only the runs a section triggers), and creator_sync unpaused.

    with bench_stack(root, creators=2000, insightiq_rate=10) as bs:
        run = _one_run(bs.api, logical_date, timeout)

``debounce_s`` also mounts the webhook receiver (devtools.webhook_setup.enable_receiver)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.bench.e2e import DAG_ID, raised_config_dir


@dataclass
class BenchStack:
    sandboxes: Any  # devtools.sandbox.launcher.SandboxServers
    stack: Any  # devtools.airflow_stack.AirflowStack
    config: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def api(self):
        return self.stack.api


def warm_execution_api(url: str, timeout: float = 600) -> None:
    """Answer the API server's first Task Execution API request before a measured run: a fresh API server
    spends about 15-30 s on it (measured on 2026-12-07 with `GET /execution/health`: 29.0 s, then 0.03 s)
    and serves nothing else meanwhile. Without this the measured run's first task (sync_accounts) waits
    that long for its start call; a long-running deployment pays it once per API server start, not per run.
    The time is reported as `execution_api_warmup_s`."""
    import httpx
    from airflow.sdk.api.client import API_VERSION

    headers = {"Airflow-API-Version": API_VERSION}
    httpx.get(f"{url}/execution/health", headers=headers, timeout=timeout).raise_for_status()


@contextlib.contextmanager
def bench_stack(
    root: Path, creators: int, insightiq_rate: float, *, debounce_s: float | None = None
) -> Iterator[BenchStack]:
    from creator_sync.settings import CONFIG_DIR_ENV
    from devtools.airflow_stack import AirflowStack, sandbox_connections
    from devtools.sandbox.launcher import SandboxServers
    from devtools.webhook_setup import enable_receiver

    config = raised_config_dir(root / "config", insightiq_rate)
    began = time.perf_counter()
    with SandboxServers(
        creators=creators, extra_args=["--insightiq-rate", str(insightiq_rate)], startup_timeout=600
    ) as sb:
        timings = {"sandbox_start_s": round(time.perf_counter() - began, 1)}
        home = root / "airflow"
        env = {
            **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
            "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rl'}",
            CONFIG_DIR_ENV: str(config),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs a section triggers
        }
        stack = AirflowStack(home, extra_env=env)
        if debounce_s is not None:
            enable_receiver(stack, debounce_s)
        try:
            began = time.perf_counter()
            stack.start(timeout=600)
            stack.airflow("pools", "import", str(config / "pools.json"))
            stack.api.wait_for_dag(DAG_ID)
            stack.api.unpause(DAG_ID)
            timings["airflow_start_s"] = round(time.perf_counter() - began, 1)
            began = time.perf_counter()
            warm_execution_api(stack.url)
            timings["execution_api_warmup_s"] = round(time.perf_counter() - began, 1)
            yield BenchStack(sb, stack, config, timings)
        finally:
            stack.stop()
