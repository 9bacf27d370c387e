"""InsightIQ requests of a full vs an incremental scheduled creator_sync run, through the real fetch task
bodies (creator_sync.sync.fetch) against the InsightIQ sandbox - not the planner's estimate.

Run 1 (no snapshot yet) reads in full and writes the directory snapshot; then `/_sandbox/mutate` changes
`--fraction` of the creators (profiles and transactions); run 2 (the next scheduled hour) reads its sweep
slices. Each run's requests are counted twice: by the fetch tasks' hook counters and by the sandbox (every
request it answered). Prints JSON.

    python -m devtools.bench.incremental_fetch --creators 2000 --fraction 0.01
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

SHARDS = 4


def _answered(sandbox) -> int:
    return sum(sandbox.stats("insightiq")["requests_by_status"].values())


def _run(sandbox, run) -> dict:
    from creator_sync.hooks.insightiq import InsightIQHook
    from creator_sync.sync import fetch
    from creator_sync.sync.steps import transform_step

    before = _answered(sandbox)
    results = [
        fetch.fetch_directory(InsightIQHook(), run),
        fetch.fetch_contents(InsightIQHook(), run),
        *(fetch.fetch_account_shard(InsightIQHook(), run, k, SHARDS) for k in range(SHARDS)),
    ]
    answered = _answered(sandbox) - before
    transformed = transform_step(run)
    return {
        "kind": transformed["directory"]["kind"],
        "requests_hook": sum(r["requests"].get("requests", 0) for r in results),
        "requests_sandbox": answered,
        "creators_out": transformed["users"] + sum(transformed["rejected"].values()),
        "events": transformed["events"],
    }


def measure(creators: int, fraction: float, rate: float) -> dict:
    import httpx

    from creator_sync.sync.run_context import SyncRun
    from devtools.bench.e2e import raised_config_dir
    from devtools.connections import connection_envs, sandbox_hosts
    from devtools.sandbox.launcher import SandboxServers

    work = Path(tempfile.mkdtemp(prefix="incremental-fetch-bench-"))
    with SandboxServers(creators=creators, seed=7, extra_args=["--insightiq-rate", str(rate)]) as sb:
        os.environ.update(connection_envs(sandbox_hosts(sb)))
        os.environ.update(
            {
                "CREATOR_SYNC_DATA_URL": f"file://{work / 'data'}",
                "CREATOR_SYNC_STATE_URL": f"sqlite:///{work / 'state.db'}",
                "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{work / 'rate-limits'}",
                "CREATOR_SYNC_CONFIG_DIR": str(raised_config_dir(work / "config", rate)),
                "CREATOR_SYNC_FETCH_MODE": "incremental",
            }
        )
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

        def scheduled(start: datetime) -> SyncRun:
            end = start + timedelta(hours=1)
            return SyncRun(f"scheduled__{start:%Y%m%dT%H}", start, end, False, False, (), 0, "scheduled")

        full = _run(sb, scheduled(hour - timedelta(hours=1)))
        mutated = httpx.post(
            f"{sb.insightiq_url}/_sandbox/mutate",
            json={"fraction": fraction, "kinds": ["profiles", "transactions"]},
            timeout=120,
        ).json()
        incremental = _run(sb, scheduled(hour + timedelta(hours=1)))
    return {
        "creators": creators,
        "mutated_creators": len(mutated["user_ids"]),
        "full": full,
        "incremental": incremental,
        "ratio": round(incremental["requests_sandbox"] / max(1, full["requests_sandbox"]), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=2000)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=200, help="InsightIQ requests/s (sandbox and client)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.creators, args.fraction, args.rate), indent=2))


if __name__ == "__main__":
    main()
