"""One InsightIQ budget for every worker: separate OS processes (as Celery workers on different machines
would be), each with its own InsightIQHook, page the same sandbox at the same time.

- ``CREATOR_SYNC_RATE_LIMIT_BACKEND=redis://...`` (the compose setting): one process and two processes
  get the same combined rate, near the vendor's 10 req/s, never more than 10 in a vendor window and no
  429 -- adding workers never multiplies the request rate.
- ``local`` (the default, no shared state): each process only gets its per-slot split,
  floor(10 / 4 slots) = 2 requests per (1 + margin) s, so two processes make ~4 req/s; safe only because
  the split assumes at most 4 clients (the pool's slots) -- it is the fallback, not the production setting.

Each worker is a fresh `python` subprocess (no shared memory, no shared limiter object); once all of
them have built their hook they are released at one common wall-clock instant, so they really compete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from creator_sync.http.limiter.config import DEFAULT_MARGIN
from creator_sync.limits import rate_limit
from devtools.celery_stack import RedisDbClaim, redis_unavailable
from devtools.connections import connection_envs, sandbox_hosts
from devtools.sandbox.inspection import limit_violations
from devtools.sandbox.launcher import SandboxServers
from devtools.services import require

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAGE = 100  # records per page (the hook's default page size)
MARGIN = 1 + DEFAULT_MARGIN  # limiter windows are the vendor's 1 s stretched by the default margin

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from creator_sync.hooks.insightiq import InsightIQHook

    offset, pages = int(sys.argv[1]), int(sys.argv[2])
    hook = InsightIQHook()
    client = hook.client  # connection + limiter built before the clock starts
    limiter = next(iter(client.limiters.values()))
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())  # the parent's common start instant (wall clock)
    time.sleep(max(0.0, start_at - time.time()))
    start = time.time()
    records = sum(1 for _ in hook.iter_records("contents", start_offset=offset, max_pages=pages))
    end = time.time()
    print(json.dumps({
        "records": records, "start": start, "end": end,
        "requests": hook.stats["requests"], "retries": hook.stats["retries"],
        "rate_limited_429": hook.stats["rate_limited_429"],
        "limiter": limiter.describe() if limiter else None,
    }))
    """
)


@pytest.fixture(scope="module")
def redis_reachable():
    require(redis_unavailable(), "the shared budget test (Redis)")


@pytest.fixture(scope="module")
def sandbox(redis_reachable):
    with SandboxServers(creators=200, seed=11) as sb:
        yield sb


@pytest.fixture
def redis_url(redis_reachable):
    claim = RedisDbClaim(1)
    with claim as (db,):
        yield claim.url(db)


def run_workers(sandbox, backend: str, pages_each: list[int]) -> dict:
    """Start one subprocess per entry of ``pages_each`` (disjoint page blocks of /v1/social/contents),
    all released at the same instant; return their results and the sandbox's view."""
    sandbox.reset("insightiq")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "CREATOR_SYNC_"))},
        **connection_envs(sandbox_hosts(sandbox)),
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    offsets = [sum(pages_each[:i]) * PAGE for i in range(len(pages_each))]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(offset), str(pages)],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for offset, pages in zip(offsets, pages_each, strict=True)
    ]
    for proc in procs:  # every interpreter has imported Airflow and built its hook
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            raise AssertionError(f"worker did not start: {line!r} {proc.stderr.read()[-3000:]}")
    start_at = time.time() + 0.5
    workers = []
    for proc in procs:
        proc.stdin.write(f"{start_at}\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        workers.append(json.loads(out.strip().splitlines()[-1]))
    assert all(w["start"] >= start_at - 0.05 for w in workers), "a worker started late: not concurrent"
    requests = sum(w["requests"] for w in workers)
    elapsed = max(w["end"] for w in workers) - min(w["start"] for w in workers)
    stats = sandbox.stats("insightiq")
    return {
        "workers": workers,
        "requests": requests,
        "elapsed": elapsed,
        "rate": requests / elapsed,
        "per_worker_rate": [w["requests"] / (w["end"] - w["start"]) for w in workers],
        "max_in_window": stats["max_requests_in_window"]["requests"],
        "windows_over_limit": stats["windows_over_limit"],
        "rate_limited_429s": stats["rate_limited_429s"],
        "attempted_max_in_window": stats["attempted_max_in_window"]["requests"],
        "limit_violations": limit_violations(stats),
        "statuses": stats["requests_by_status"],
    }


def describe(label: str, result: dict) -> str:
    rates = ", ".join(f"{r:.2f}" for r in result["per_worker_rate"])
    return (
        f"{label}: {result['requests']} requests in {result['elapsed']:.1f}s = {result['rate']:.2f} req/s "
        f"combined (per worker {rates}); sandbox max {result['max_in_window']}/window, "
        f"{result['windows_over_limit']} windows over, {result['rate_limited_429s']} 429s, "
        f"max {result['attempted_max_in_window']} arrived/window; "
        f"limiter {result['workers'][0]['limiter']}"
    )


def assert_vendor_limit_respected(result: dict) -> None:
    # real 429s and what ARRIVED per window: both fail when a client sends into a full window
    assert result["limit_violations"] == [], result
    assert result["max_in_window"] <= 10, result
    assert set(result["statuses"]) == {"200"}, result
    assert all(w["retries"] == 0 and w["rate_limited_429"] == 0 for w in result["workers"]), result


def test_workers_share_one_redis_budget_and_local_workers_split_it(sandbox, redis_url, capsys):
    spec = rate_limit("insightiq_api")
    assert (spec.limit, spec.window, spec.slots) == (10, 1, 4)
    ceiling = spec.limit / (spec.window * MARGIN)  # the steady rate of one full budget

    one = run_workers(sandbox, redis_url, [30])
    two = run_workers(sandbox, redis_url, [30, 30])
    split = run_workers(sandbox, "local", [10, 10])

    with capsys.disabled():
        print()
        print(describe("redis, 1 worker ", one))
        print(describe("redis, 2 workers", two))
        print(describe("local, 2 workers", split))

    # Redis: one budget. Two workers are not faster than one, and together stay near the limit.
    for result in (one, two):
        assert_vendor_limit_respected(result)
        assert "RedisLimiter(insightiq_api: 10 per" in result["workers"][0]["limiter"], result
    # two workers on one budget reach about one worker's rate (a ratio: no wall-clock figure)
    assert two["rate"] >= 0.6 * one["rate"], (describe("1", one), describe("2", two))
    # never more than one budget: <= 10 * (T / window + 1) requests in T seconds (not 2 x that)
    assert two["requests"] <= spec.limit * (two["elapsed"] / (spec.window * MARGIN) + 1), describe("2", two)
    assert two["rate"] <= one["rate"] * 1.1, (describe("1", one), describe("2", two))
    # both workers really took part (neither starved): each got a fair share of the one budget
    assert all(r >= 0.3 * ceiling for r in two["per_worker_rate"]), describe("redis, 2 workers", two)

    # local: no shared state, so each worker spends only its per-slot split of the budget. A sliding
    # window of `limit` per W s allows at most limit * (T / W + 1) sends in T seconds (the +1: the
    # window that is open when the clock starts), so short runs read a little above limit / W.
    assert_vendor_limit_respected(split)
    assert "SlidingWindowLimiter(insightiq_api: 2 per" in split["workers"][0]["limiter"], split
    for w in split["workers"]:
        allowed = spec.per_slot_limit * ((w["end"] - w["start"]) / (spec.window * MARGIN) + 1)
        assert w["requests"] <= allowed, describe("local, 2 workers", split)
    assert split["rate"] < 0.5 * two["rate"], (describe("local", split), describe("redis", two))
