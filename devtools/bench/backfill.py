"""A backfill through the real fetch code: the InsightIQ requests of D days of hourly backfill runs (the
backfill range cache, creator_sync.sync.backfill) over those of one full, non-backfill run.

Each run is what the creator_sync DAG's fetch tasks do: fetch_directory, fetch_contents and one
fetch_account_shard per `insightiq_api` pool slot, in parallel threads, each with its own InsightIQHook.
The sandbox's InsightIQ limit and the clients' pools.json are raised together (as devtools/bench/e2e.py
does) so the reads take seconds; the figures are requests, counted by the sandbox and by the hooks.

`python -m devtools.bench.backfill [creators] [days]` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOUR = timedelta(hours=1)
_ENV = ("CREATOR_SYNC_CONFIG_DIR", "CREATOR_SYNC_DATA_URL", "CREATOR_SYNC_RATE_LIMIT_BACKEND")


def _fetch_run(run, shards: int) -> dict[str, Any]:
    """The fetch tasks of one run in parallel; their results and the requests their hooks made."""
    from creator_sync.hooks.insightiq import InsightIQHook
    from creator_sync.sync import fetch

    calls = [
        lambda h: fetch.fetch_directory(h, run),
        lambda h: fetch.fetch_contents(h, run),
        *(lambda h, k=k: fetch.fetch_account_shard(h, run, k, shards) for k in range(shards)),
    ]

    def task(call):
        hook = InsightIQHook()
        try:
            result = call(hook)
            return result, int(hook.stats.get("requests", 0))
        finally:
            hook.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        done = list(pool.map(task, calls))
    return {
        "results": [r for r, _ in done],
        "requests": sum(n for _, n in done),
        "misses": sum(1 for r, _ in done if not r.get("backfill_cache", {}).get("hit", False)),
    }


def _sandbox_requests(sandbox) -> int:
    stats = sandbox.stats("insightiq")
    return sum(int(v) for v in (stats.get("requests_by_status") or {}).values())


def run_backfill(creators: int, days: int, insightiq_rate: float = 2000.0) -> dict[str, Any]:
    """`days` days of hourly backfill runs (ending at today's midnight, UTC) vs one full hourly run."""
    from creator_sync.limits import INSIGHTIQ_POOL, pool_slots
    from creator_sync.sync.run_context import SyncRun
    from devtools.bench.e2e import raised_config_dir
    from devtools.connections import connection_envs, sandbox_hosts
    from devtools.sandbox.launcher import SandboxServers

    saved = {k: os.environ.get(k) for k in _ENV}
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    os.environ["CREATOR_SYNC_CONFIG_DIR"] = str(raised_config_dir(tmp / "config", insightiq_rate))
    os.environ["CREATOR_SYNC_DATA_URL"] = f"file://{tmp / 'data'}"
    os.environ["CREATOR_SYNC_RATE_LIMIT_BACKEND"] = "local"
    shards = pool_slots(INSIGHTIQ_POOL)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    try:
        args = ["--insightiq-rate", str(insightiq_rate)]
        with SandboxServers(creators=creators, seed=42, extra_args=args) as sb:
            os.environ.update(connection_envs(sandbox_hosts(sb)))

            sb.reset()
            began = time.perf_counter()
            # a full read: a manual run (a scheduled one reads in full too with CREATOR_SYNC_FETCH_MODE=full)
            full_run = SyncRun("manual__full", end - HOUR, end, False, False, (), 0, "manual")
            full = _fetch_run(full_run, shards)
            full_s = time.perf_counter() - began
            full_sandbox = _sandbox_requests(sb)

            sb.reset()
            began = time.perf_counter()
            hooks = misses = 0
            runs = 24 * days
            for h in range(runs):
                at = start + h * HOUR
                run = SyncRun(f"backfill__{at:%Y-%m-%dT%H}", at, at + HOUR, True, False, (), 0, "backfill")
                got = _fetch_run(run, shards)
                hooks, misses = hooks + got["requests"], misses + got["misses"]
            backfill_s = time.perf_counter() - began
            backfill_sandbox = _sandbox_requests(sb)
            violations = sb.stats("insightiq").get("rate_limited_429s")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        f"backfill_{days}d_requests": backfill_sandbox,
        "full_sync_requests": full_sandbox,
        f"backfill_{days}d_requests_ratio": backfill_sandbox / full_sandbox,
        "backfill_creators": creators,
        "backfill_days": days,
        "backfill_runs": runs,
        "backfill_fetch_tasks_reading": misses,  # fetch tasks that read InsightIQ (the rest: cache)
        "backfill_requests_by_hooks": hooks,  # cross-check of the sandbox's count
        "full_sync_requests_by_hooks": full["requests"],
        "backfill_seconds": round(backfill_s, 1),
        "full_sync_seconds": round(full_s, 1),
        "backfill_insightiq_429s": violations,
        "backfill_insightiq_rate": insightiq_rate,
    }


if __name__ == "__main__":
    creators = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    print(json.dumps(run_backfill(creators, days), indent=2))
