"""Late-arriving data: a content item InsightIQ syncs after its interval's run finished.

The sync steps (creator_sync.sync.fetch, creator_sync.sync.steps) run against the sandboxes without
Airflow's scheduler:
interval H, then a late content item published inside H appears, then interval H+1. Without a look-back
the item is never sent (the gap); with one it is sent exactly once and H's events are not sent again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.transform import load_stats
from creator_sync.sync import fetch
from creator_sync.sync.insightiq_reads import day_range
from creator_sync.sync.run_context import LOOKBACK_ENV, SyncRun, lookback_hours
from creator_sync.sync.steps import report_step, transform_step

HOUR = timedelta(hours=1)


# -- the setting: Param / environment variable ---------------------------------------------------------
@pytest.mark.parametrize(
    ("param", "env", "expected"),
    [
        (None, None, 0),  # nothing set: today's exact-interval behaviour
        (None, "", 0),
        (None, "6", 6),
        (None, " 2 ", 2),
        (3, "6", 3),  # the Param wins over the environment
        (0, "6", 0),  # an explicit 0 too
        ("", "6", 6),  # an empty form field = not set
        (2.0, None, 2),  # JSON numbers (run conf) that are whole
    ],
)
def test_lookback_hours_param_wins_over_env_default_zero(param, env, expected):
    environ = {} if env is None else {LOOKBACK_ENV: env}
    assert lookback_hours(param, environ) == expected


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "3h", "٣"])
def test_bad_env_value_names_the_variable_and_how_to_fix_it(bad):
    with pytest.raises(CreatorSyncConfigError) as error:  # the retry policy fails it at once
        lookback_hours(None, {LOOKBACK_ENV: bad})
    message = str(error.value)
    assert f"{LOOKBACK_ENV}={bad!r}" in message
    assert "allowed is a whole number >= 0" in message and "unset" in message


@pytest.mark.parametrize("bad", [-1, 1.5, "x", True, [2]])
def test_bad_param_value_names_the_param_and_how_to_fix_it(bad):
    with pytest.raises(CreatorSyncConfigError) as error:
        lookback_hours(bad, {LOOKBACK_ENV: "2"})  # a valid env default does not hide a bad Param
    message = str(error.value)
    assert f"Param lookback_hours={bad!r}" in message
    assert "whole number of hours >= 0" in message and LOOKBACK_ENV in message


def _context(params: dict, run_type: str = "scheduled") -> dict:
    start = datetime(2026, 1, 15, 10, tzinfo=UTC)
    dag_run = SimpleNamespace(run_id=f"{run_type}__x", run_after=start + HOUR, run_type=run_type)
    return {
        "params": params,
        "dag_run": dag_run,
        "data_interval_start": start,
        "data_interval_end": start + HOUR,
    }


def test_sync_run_from_context_sets_the_event_window(monkeypatch):
    monkeypatch.delenv(LOOKBACK_ENV, raising=False)
    run = SyncRun.from_context(_context({}))
    assert (run.lookback_hours, run.events_from) == (0, run.start)  # default: exactly the interval

    monkeypatch.setenv(LOOKBACK_ENV, "4")
    run = SyncRun.from_context(_context({"lookback_hours": None}))
    assert run.lookback_hours == 4 and run.events_from == run.start - 4 * HOUR
    assert run.end == run.start + HOUR  # the data interval itself does not move
    assert SyncRun.from_context(_context({"lookback_hours": 1}, "backfill")).events_from == run.start - HOUR

    monkeypatch.setenv(LOOKBACK_ENV, "-4")
    with pytest.raises(ValueError, match=LOOKBACK_ENV):
        SyncRun.from_context(_context({}))


def test_sync_run_rejects_a_negative_lookback():
    start = datetime(2026, 1, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="lookback_hours"):
        SyncRun("r", start, start + HOUR, False, False, (), -1)


def test_day_range_covers_the_lookback_days():
    start = datetime(2026, 1, 15, 1, tzinfo=UTC)
    assert day_range(SyncRun("r", start, start + HOUR, False, False, ())) == ("2026-01-15",) * 2
    with_lookback = SyncRun("r", start, start + HOUR, False, False, (), 2)
    assert day_range(with_lookback) == ("2026-01-14", "2026-01-15")  # one extra whole day


# -- against the sandboxes -------------------------------------------------------------------------------
# tests/pipeline/conftest.py serves InsightIQ at this many requests/s (and raises the client's budget to
# match): this module checks which events are sent, so each test's two full syncs take seconds
SANDBOX_RATE = 200
# 100 creators: each sync's per-account reads (about 40 ms each at the sandbox) set the time; the busiest
# hour still holds sendable events (at 50 it holds none), so the look-back re-reads some (overlap > 0)
SANDBOX_CREATORS = 100


@pytest.fixture
def synced(sandbox_env, shared_rate_budget, monkeypatch, tmp_path):
    """Fresh ledger and run directories; one shared rate budget so each hook gets the whole SANDBOX_RATE."""
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    return sandbox_env


_TRIES = itertools.count(1)


def upsert(run: SyncRun, transformed: dict) -> dict:
    """The DAG's upsert task: InsiderUpsertOperator on the transform's files (each call a new attempt)."""
    from creator_sync.operators import InsiderUpsertOperator

    op = InsiderUpsertOperator(
        task_id="upsert",
        users_path=transformed["users_path"],
        rejected_path=transformed["rejected_path"],
        malformed_path=transformed["malformed_path"],
        skip_hook=run.skip_hook,
        dry_run=run.dry_run,
        run_id=run.run_id,
    )
    return op.execute(
        context={"ti": SimpleNamespace(task_id="upsert", map_index=-1, try_number=next(_TRIES))}
    )


def sync(run: SyncRun) -> dict:
    """One creator_sync run's steps, in the DAG's order."""
    fetch.fetch_directory(InsightIQHook(), run)
    contents = fetch.fetch_contents(InsightIQHook(), run)
    for shard in range(2):
        fetch.fetch_account_shard(InsightIQHook(), run, shard, 2)
    transformed = transform_step(run)
    sent = upsert(run, transformed)
    report = report_step(run, transformed, sent)
    return {"contents": contents, "transformed": transformed, "sent": sent["send"], "report": report}


def busiest_hour(sandbox) -> datetime:
    """The hour (of the day before the anchor) with the most content items: H has events to re-read."""
    day = {"from_date": "2026-01-14", "to_date": "2026-01-14", "limit": 100}
    with httpx.Client(
        base_url=sandbox.insightiq_url, auth=("sandbox-client-id", "sandbox-client-secret")
    ) as iq:
        items = iq.get("/v1/social/contents", params=day).json()["data"]
    hours = Counter(i["published_at"][:13] for i in items)
    return datetime.fromisoformat(max(sorted(hours), key=hours.__getitem__)).replace(tzinfo=UTC)


def valid_account(sandbox) -> str:
    """An engagement account of a creator the transform accepts (the late event must be sendable)."""
    invalid = {
        r["user_id"] for r in httpx.get(f"{sandbox.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    }
    for account in InsightIQHook().iter_records("accounts"):
        if (
            account["user"]["id"] not in invalid
            and account["data"]["engagement"]["status"] != "NOT_SUPPORTED"
        ):
            return account["id"]
    raise AssertionError("no valid account with contents")


def insider_events(sandbox) -> Counter:
    """(event name, item id, timestamp) -> how many times Insider stored that event; the item id is the
    content, transaction or payout id (account events: the account id)."""
    users = httpx.get(f"{sandbox.insider_url}/_sandbox/users", params={"limit": 100_000}).json()["data"]
    return Counter(
        (e["event_name"], _item_id(e["params"]["custom"]), e["timestamp"]) for u in users for e in u["events"]
    )


def _item_id(custom: dict) -> str:
    for key in ("content_id", "transaction_id", "payout_id", "account_id"):
        if custom.get(key):
            return custom[key]
    raise AssertionError(f"an event without an item id: {custom}")


@pytest.mark.slow
@pytest.mark.parametrize("lookback", [0, 1, 3])
def test_a_late_content_item_is_sent_once_with_a_lookback_and_lost_without(synced, lookback):
    h_start = busiest_hour(synced)
    h1_start = h_start + HOUR
    first = sync(
        SyncRun(f"scheduled__{h_start:%H}-lb{lookback}", h_start, h1_start, False, False, (), lookback)
    )
    assert first["report"]["reconciled"], first["report"]["text"]
    sent_before = insider_events(synced)  # H's run (with the same look-back before it)
    assert sent_before.total() == first["sent"]["events_sent"] > 0
    assert any(h_start <= datetime.fromisoformat(e[2]) < h1_start for e in sent_before)

    late = (
        httpx.post(
            f"{synced.insightiq_url}/_sandbox/late-content",
            json={
                "account_id": valid_account(synced),
                "published_at": (h_start + timedelta(minutes=30)).isoformat(),
            },
        )
        .raise_for_status()
        .json()
    )
    late_event = ("content_published", late["id"], f"{h_start:%Y-%m-%dT%H}:30:00Z")

    run = SyncRun(
        f"scheduled__{h1_start:%H}-lb{lookback}", h1_start, h1_start + HOUR, False, False, (), lookback
    )
    second = sync(run)
    stored = insider_events(synced)
    stats = load_stats(second["transformed"]["stats_path"])
    assert second["report"]["reconciled"], second["report"]["text"]  # fetched = sent + rejected + unchanged
    assert synced.stats("insider")["duplicate_events"] == 0
    assert max(stored.values()) == 1  # no event stored twice, late or not
    new = stored - sent_before
    assert new.total() == second["sent"]["events_sent"]
    in_h1 = {e for e in new if run.start <= datetime.fromisoformat(e[2]) < run.end}
    # the earlier run's events inside this run's window were read again and skipped by the ledger
    overlap = [e for e in sent_before if datetime.fromisoformat(e[2]) >= run.events_from]
    assert second["sent"]["events_already_acknowledged"] == len(overlap)

    if lookback == 0:
        assert stored[late_event] == 0  # the gap: published inside H, synced after H's run, never sent
        assert set(new) == in_h1 and not overlap and stats.rows_in_lookback == 0
        return
    assert stored[late_event] == 1  # the late item arrived, once
    assert set(new) - in_h1 == {late_event}  # the only event from before H+1 that was sent now
    assert len(overlap) > 0 and stats.rows_in_lookback >= len(overlap) + 1
    assert f"look-back {lookback} h" in second["report"]["text"]

    # a retry of H+1's transform and upsert (same fetched files) sends nothing again
    again = upsert(run, transform_step(run))["send"]
    assert again["events_sent"] == 0 and again["users_sent"] == 0
    assert again["events_already_acknowledged"] == len(overlap)  # by H's run; H+1's own count as its sent
    assert insider_events(synced) == stored and synced.stats("insider")["duplicate_events"] == 0
