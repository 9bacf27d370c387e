"""creator_sync.sync.fetch against the InsightIQ sandbox: the account shards split the accounts list."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.sources import discover_inputs
from creator_sync.sync import fetch, insightiq_reads
from creator_sync.sync.run_context import SyncRun

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget")]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# the shards' reads are counted, not timed
SANDBOX_RATE = 200


def make_run(run_id: str, account_ids: tuple[str, ...] = ()) -> SyncRun:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return SyncRun(run_id, end - timedelta(days=1), end, False, False, account_ids)


def test_shards_read_every_account_once_with_no_page_in_common(sandbox_env):
    run = make_run("manual__fetch-shards")
    expected = sorted(a["id"] for a in InsightIQHook().iter_records("accounts"))
    pages = math.ceil(len(expected) / 100)

    hooks = [InsightIQHook() for _ in range(4)]
    shards = [insightiq_reads.shard_accounts(hooks[k], run, k, 4) for k in range(4)]
    assert sorted(a["id"] for shard in shards for a in shard) == expected  # each account exactly once
    assert pages <= sum(h.stats["requests"] for h in hooks) <= pages + 3  # + one empty page per reader

    results = [fetch.fetch_account_shard(InsightIQHook(), run, k, 4) for k in range(4)]
    written = pd.concat(pd.read_parquet(p) for p in discover_inputs(run.dir / "fetch")["accounts"])
    assert sorted(written["id"]) == expected
    assert [r["accounts"]["count"] for r in results] == [len(s) for s in shards]
    income_accounts = int(written["data.income.status"].isin(insightiq_reads.INCOME_SYNCED).sum())
    assert 0 < income_accounts < len(expected)
    assert sum(r["requests"]["requests"] for r in results) >= pages + income_accounts


def test_a_targeted_sync_splits_its_account_filter_between_the_shards(sandbox_env):
    accounts = [a["id"] for a in InsightIQHook().iter_records("accounts")][:5]
    run = make_run("manual__fetch-targeted", tuple(accounts))
    sandbox_env.reset()

    results = [fetch.fetch_account_shard(InsightIQHook(), run, shard, 4) for shard in range(4)]
    directory = fetch.fetch_directory(InsightIQHook(), run)

    written = pd.concat(pd.read_parquet(p) for p in discover_inputs(run.dir / "fetch")["accounts"])
    assert sorted(written["id"]) == sorted(accounts)
    assert [r["accounts"]["count"] for r in results] == [2, 1, 1, 1]
    assert "accounts" not in directory and directory["users"]["count"] >= 1
