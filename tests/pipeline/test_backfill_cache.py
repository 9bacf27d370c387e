"""The backfill range cache (creator_sync.sync.backfill) through the real fetch functions against the
InsightIQ sandbox: 48 hourly backfill runs read the directory, the contents list and each income account
once per chunk, and every run's transform output equals what the uncached fetch gives for that run."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.transform import transform_run
from creator_sync.sync import backfill, fetch, full_fetch
from creator_sync.sync.insightiq_reads import INCOME_SYNCED, account_status
from creator_sync.sync.run_context import SyncRun

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget")]

RATE = 200  # requests/s on both sides, so the reads take seconds
SHARDS = 2
FIRST_HOUR = datetime(2026, 1, 10, tzinfo=UTC)  # the sandbox's data end at SANDBOX_NOW (2026-01-15)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def sandbox():
    from devtools.sandbox.launcher import SandboxServers

    from .factories import SANDBOX_NOW

    args = ["--insightiq-rate", str(RATE), "--now", SANDBOX_NOW]
    with SandboxServers(creators=150, seed=7, extra_args=args) as sb:
        yield sb


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A data directory per test (the cache lives in it) and a client config allowing RATE requests/s."""
    from devtools.bench.e2e import raised_config_dir

    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(tmp_path / "config", RATE)))
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    for name in (backfill.CHUNK_DAYS_ENV, backfill.CACHE_HOURS_ENV):
        monkeypatch.delenv(name, raising=False)


class Reads:
    """Every InsightIQ list/get call the hooks it made were asked for, and their requests."""

    def __init__(self) -> None:
        self.lists: Counter = Counter()
        self.requests = 0

    def hook(self) -> InsightIQHook:
        reads = self

        class CountingHook(InsightIQHook):
            def iter_records(self, resource, **kwargs):
                reads.lists[(resource, kwargs.get("account_id"))] += 1
                return super().iter_records(resource, **kwargs)

            def close(self):
                reads.requests += int(self.stats.get("requests", 0))
                super().close()

        return CountingHook()

    def of(self, resource: str) -> dict:
        return {key[1]: n for key, n in self.lists.items() if key[0] == resource}


def fetch_run(run: SyncRun, reads: Reads) -> list[dict]:
    """The fetch tasks of one run, one hook each (as the DAG's operators do)."""
    out = []
    for call in (
        lambda h: fetch.fetch_directory(h, run),
        lambda h: fetch.fetch_contents(h, run),
        *(lambda h, k=k: fetch.fetch_account_shard(h, run, k, SHARDS) for k in range(SHARDS)),
    ):
        hook = reads.hook()
        try:
            out.append(call(hook))
        finally:
            hook.close()
    return out


def hourly_backfill(hours: int, first: datetime = FIRST_HOUR, lookback: int = 0) -> list[SyncRun]:
    return [
        SyncRun(
            f"backfill__{first + h * HOUR:%Y-%m-%dT%H}",
            first + h * HOUR,
            first + (h + 1) * HOUR,
            True,
            False,
            (),
            lookback,
            run_type="backfill",
        )
        for h in range(hours)
    ]


def transformed(run: SyncRun, out: Path) -> dict:
    result = transform_run(
        run.dir / "fetch", start=run.start, end=run.end, events_from=run.events_from, out_dir=out
    )
    lines = {
        name: sorted(path.read_text().splitlines())
        for name, path in (
            ("users", result.users_path),
            ("rejected", result.rejected_path),
            ("malformed", result.malformed_path),
        )
    }
    return {**lines, "stats": dataclasses.asdict(result.stats)}


def income_accounts() -> set[str]:
    accounts = InsightIQHook().iter_records("accounts")
    return {a["id"] for a in accounts if account_status(a, "income") in INCOME_SYNCED}


def test_48_hourly_backfill_runs_read_once_and_transform_like_uncached_runs(
    sandbox_env, tmp_path, monkeypatch
):
    runs = hourly_backfill(48)
    cached = Reads()
    results = [fetch_run(run, cached) for run in runs]

    # one chunk (31 days from the first run's day) serves every run
    assert cached.of("users") == {None: 1} and cached.of("profiles") == {None: 1}
    assert cached.of("contents") == {None: 1}
    assert cached.of("accounts") == {None: SHARDS}  # each shard its pages, once
    income = cached.of("social_transactions")
    assert set(income) == income_accounts() and set(income.values()) == {1}
    first_run_requests = sum(r["requests"]["requests"] for r in results[0])
    assert first_run_requests == cached.requests > len(income)
    assert all(
        r["requests"]["requests"] == 0 and r["backfill_cache"]["hit"] for rs in results[1:] for r in rs
    )
    assert {r["backfill_cache"]["days"][0] for rs in results for r in rs} == {"2026-01-10"}

    # The same backfill runs with the cache off. An uncached run asks InsightIQ for whole days (the days of
    # its event window), so every run of a day makes the same reads: one uncached fetch per day stands for
    # the fetch of each of that day's runs.
    monkeypatch.setenv(backfill.CHUNK_DAYS_ENV, "0")
    uncached, plain_fetch, events = Reads(), {}, 0
    for run in runs:
        days = backfill.run_days(run)
        if days not in plain_fetch:
            plain = dataclasses.replace(run, run_id=f"uncached__{days[0]}_{days[1]}")
            fetch_run(plain, uncached)
            plain_fetch[days] = plain
        plain = dataclasses.replace(plain_fetch[days], start=run.start, end=run.end)
        got = transformed(run, tmp_path / "out" / run.run_id)
        want = transformed(plain, tmp_path / "out" / f"{run.run_id}-uncached")
        assert got == want, run.run_id
        events += got["stats"]["events_written"]
    assert len(plain_fetch) == 2 and uncached.of("users") == {None: 2}
    assert events > 0  # the comparison covered events, not only users


def test_a_run_outside_the_chunk_reads_again(sandbox_env, monkeypatch):
    """One-day chunks: the 48 runs of two days read everything twice, once per chunk."""
    monkeypatch.setenv(backfill.CHUNK_DAYS_ENV, "1")
    reads = Reads()
    for run in hourly_backfill(48):
        fetch_run(run, reads)
    assert reads.of("users") == {None: 2} and reads.of("contents") == {None: 2}
    assert set(reads.of("social_transactions").values()) == {2}


def test_the_guard_with_the_cache_off_every_run_reads(sandbox_env, monkeypatch):
    monkeypatch.setenv(backfill.CHUNK_DAYS_ENV, "0")
    reads = Reads()
    results = [fetch_run(run, reads) for run in hourly_backfill(3)]
    assert reads.of("users") == {None: 3} and reads.of("contents") == {None: 3}
    assert not any("backfill_cache" in r for rs in results for r in rs)


def test_non_backfill_and_targeted_runs_never_use_the_cache(sandbox_env):
    run, *_ = hourly_backfill(2)
    fetch_run(run, Reads())  # fills the cache
    scheduled = dataclasses.replace(run, run_id="scheduled__x", run_type="scheduled", skip_hook=False)
    reads = Reads()
    results = fetch_run(scheduled, reads)
    assert reads.of("users") == {None: 1} and reads.of("contents") == {None: 1}
    assert not any("backfill_cache" in r for r in results)

    account = next(iter(income_accounts()))
    targeted = dataclasses.replace(run, run_id="backfill__targeted", account_ids=(account,))
    reads = Reads()
    fetch.fetch_contents(reads.hook(), targeted)
    assert reads.of("contents") == {account: 1}


def test_an_expired_or_partial_entry_is_never_used(sandbox_env, monkeypatch):
    first, second, third = hourly_backfill(3)
    reads = Reads()

    # a write that fails after its files are written leaves no marker: the next run reads again
    class Broken(Exception):
        pass

    real = full_fetch.fetch_contents  # the read that fills a cache entry

    def failing(hook, run):
        real(hook, run)
        claims.append(json.loads((run.dir / backfill.CLAIM).read_text())["run_id"])  # announced meanwhile
        raise Broken

    claims: list[str] = []

    monkeypatch.setattr(full_fetch, "fetch_contents", failing)
    with pytest.raises(Broken):
        fetch.fetch_contents(reads.hook(), first)
    monkeypatch.setattr(full_fetch, "fetch_contents", real)
    assert len(backfill.entries("contents")) == 1 and backfill.find("contents", first) is None
    assert claims == [first.run_id] and not (backfill.entries("contents")[0].path / backfill.CLAIM).exists()
    fetch.fetch_contents(reads.hook(), first)
    assert reads.of("contents") == {None: 2}  # the failed read, then a new chunk read

    fetch.fetch_contents(reads.hook(), second)
    assert reads.of("contents") == {None: 2}  # served from the complete entry

    later = datetime.now(UTC) + timedelta(hours=backfill.DEFAULT_CACHE_HOURS, minutes=1)
    monkeypatch.setattr(backfill, "_now", lambda: later)
    fetch.fetch_contents(reads.hook(), third)
    assert reads.of("contents") == {None: 3}  # expired: read again
    # the expired entries (the complete one and the partial one) were deleted by that write
    assert len(backfill.entries("contents")) == 1


def test_a_run_whose_interval_ends_after_the_read_started_reads_again(sandbox_env, monkeypatch):
    run, nxt = hourly_backfill(2)
    monkeypatch.setattr(backfill, "_now", lambda: run.end + timedelta(minutes=5))
    reads = Reads()
    fetch.fetch_contents(reads.hook(), run)
    monkeypatch.setattr(backfill, "_now", lambda: nxt.end + timedelta(minutes=5))
    fetch.fetch_contents(reads.hook(), nxt)  # the entry was read before this hour was over
    assert reads.of("contents") == {None: 2}


@pytest.fixture(scope="module")
def s3_server():
    from devtools.s3_server import MotoS3Server

    with MotoS3Server() as server:
        server.create_bucket("creator-sync-backfill")
        yield server


def test_the_cache_works_on_object_storage(sandbox_env, s3_server, monkeypatch, tmp_path):
    for key, value in s3_server.connection_env("creator_sync_s3").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", "s3://creator-sync-backfill/data")
    monkeypatch.setenv("CREATOR_SYNC_DATA_CONN_ID", "creator_sync_s3")
    runs = hourly_backfill(3)
    reads = Reads()
    results = [fetch_run(run, reads) for run in runs]
    assert reads.of("users") == {None: 1} and reads.of("contents") == {None: 1}
    assert [r["backfill_cache"]["hit"] for r in results[2]] == [True] * (2 + SHARDS)
    assert results[2][0]["users"]["path"].startswith("s3://")

    keys = s3_server.keys("creator-sync-backfill", "data/")
    markers = [k for k in keys if k.endswith(backfill.MARKER)]
    assert len(markers) == 2 + SHARDS and all(k.startswith("data/backfill-cache/") for k in markers)
    assert "data/runs/backfill__2026-01-10T02/fetch/contents/contents.parquet" in keys

    monkeypatch.setenv(backfill.CHUNK_DAYS_ENV, "0")  # the same run, uncached
    plain = dataclasses.replace(runs[2], run_id="uncached__s3")
    fetch_run(plain, Reads())
    from creator_sync.storage import staged_input

    outputs = []
    for run in (runs[2], plain):
        with staged_input(run.dir / "fetch") as local:
            result = transform_run(local, start=run.start, end=run.end, out_dir=tmp_path / run.run_id)
            outputs.append((sorted(result.users_path.read_text().splitlines()), result.stats.events_written))
    assert outputs[0] == outputs[1]
