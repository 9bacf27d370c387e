"""Which days a backfill read covers (creator_sync.sync.backfill.chunk_for) and its settings; no server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.sync import backfill
from creator_sync.sync.run_context import SyncRun

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    for name in (backfill.CHUNK_DAYS_ENV, backfill.CACHE_HOURS_ENV):
        monkeypatch.delenv(name, raising=False)


def hour(day: date, h: int = 5, lookback: int = 0) -> SyncRun:
    start = datetime(day.year, day.month, day.day, h, tzinfo=UTC)
    return SyncRun("backfill__x", start, start + timedelta(hours=1), True, False, (), lookback, "backfill")


def entry(part: str, first: date, last: date, written: datetime, complete: bool = True):
    name = f"{first}_{last}_{written.strftime(backfill._STAMP)}_abcd1234"
    path = backfill._part_dir(part) / name
    path.mkdir(parents=True)
    if complete:
        (path / backfill.MARKER).write_text("{}")
    return path


def test_a_forward_chunk_starts_at_the_run_and_stops_at_today():
    assert backfill.chunk_for("contents", hour(date(2026, 1, 1)), NOW) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )
    assert backfill.chunk_for("contents", hour(date(2026, 2, 20)), NOW) == (date(2026, 2, 20), NOW.date())
    # a look-back over midnight: the chunk starts at the window's first day
    run = hour(date(2026, 1, 1), h=1, lookback=3)
    assert backfill.chunk_for("contents", run, NOW)[0] == date(2025, 12, 31)


def test_a_backfill_running_backwards_gets_the_days_before_its_run():
    entry("contents", date(2026, 2, 1), date(2026, 2, 10), NOW - timedelta(hours=1))
    run = hour(date(2026, 1, 31))
    assert backfill.chunk_for("contents", run, NOW) == (date(2026, 1, 1), date(2026, 1, 31))


def test_only_a_fresh_complete_entry_marks_a_backwards_run():
    entry("contents", date(2026, 2, 1), date(2026, 2, 10), NOW - timedelta(hours=1), complete=False)
    entry("contents", date(2026, 2, 1), date(2026, 2, 10), NOW - timedelta(hours=13))
    assert backfill.chunk_for("contents", hour(date(2026, 1, 31)), NOW)[0] == date(2026, 1, 31)


def test_find_takes_a_complete_fresh_entry_covering_the_run_only():
    run = hour(date(2026, 1, 5))
    assert backfill.find("contents", run, NOW) is None
    entry("contents", date(2026, 1, 6), date(2026, 1, 20), NOW - timedelta(hours=1))  # misses the day
    entry("contents", date(2026, 1, 1), date(2026, 1, 20), NOW - timedelta(hours=1), complete=False)
    assert backfill.find("contents", run, NOW) is None
    good = entry("contents", date(2026, 1, 1), date(2026, 1, 20), NOW - timedelta(hours=2))
    assert backfill.find("contents", run, NOW).path == good
    assert backfill.find("directory", run, NOW) is None  # another part's entries never count


@pytest.mark.parametrize("name", [backfill.CHUNK_DAYS_ENV, backfill.CACHE_HOURS_ENV])
def test_a_bad_setting_says_what_is_wrong(monkeypatch, name):
    monkeypatch.setenv(name, "-3")
    with pytest.raises(
        CreatorSyncConfigError, match=rf"{name}='-3' is invalid: allowed is a whole number >= 0"
    ):
        backfill.applies(hour(date(2026, 1, 1)))


def test_the_cache_applies_to_full_scope_backfill_runs_only(monkeypatch):
    run = hour(date(2026, 1, 1))
    assert backfill.applies(run)
    assert not backfill.applies(SyncRun("scheduled__x", run.start, run.end, False, False, (), 0, "scheduled"))
    assert not backfill.applies(SyncRun("b", run.start, run.end, True, False, ("acc",), 0, "backfill"))
    monkeypatch.setenv(backfill.CHUNK_DAYS_ENV, "0")
    assert not backfill.applies(run)


@pytest.mark.parametrize(
    ("run_type", "expected"), [("backfill", True), ("scheduled", False), ("manual", False)]
)
def test_the_run_type_decides_whether_a_run_uses_the_cache(run_type, expected):
    from types import SimpleNamespace

    start = NOW - timedelta(hours=1)
    context = {
        "params": {},
        "dag_run": SimpleNamespace(run_id=f"{run_type}__x", run_type=run_type, run_after=NOW),
        "data_interval_start": start,
        "data_interval_end": NOW,
    }
    assert backfill.applies(SyncRun.from_context(context)) is expected


def claim(path, run_id: str, beat: datetime) -> None:
    import json

    (path / backfill.CLAIM).write_text(json.dumps({"run_id": run_id, "beat": beat.isoformat()}))


def test_a_run_waits_for_another_runs_read_in_progress_instead_of_reading_again(monkeypatch):
    """Backfill runs may run side by side (the backfill's own max_active_runs): the second run's task
    waits for the first one's marker and reads nothing."""
    import threading

    now = datetime.now(UTC)
    run = hour(date(2026, 1, 5))
    path = entry("contents", date(2026, 1, 1), date(2026, 1, 31), now - timedelta(seconds=5), complete=False)
    claim(path, "backfill__other", now)
    monkeypatch.setattr(backfill, "POLL_S", 0.05)
    assert backfill.pending("contents", run) is not None

    def finish():
        (path / "fetch" / "contents").mkdir(parents=True)
        (path / "fetch" / "contents" / "contents.parquet").write_bytes(b"")
        (path / backfill.MARKER).write_text('{"result": {}}')

    threading.Timer(0.3, finish).start()
    reads = []
    got = backfill.cached("contents", _NoRequests(), run, lambda chunk: reads.append(chunk) or {})
    assert reads == [] and got["backfill_cache"] == {
        "entry": path.name,
        "days": ["2026-01-01", "2026-01-31"],
        "hit": True,
    }


def test_a_dead_or_own_claim_is_not_waited_for():
    now = datetime.now(UTC)
    run = hour(date(2026, 1, 5))
    dead = entry("contents", date(2026, 1, 1), date(2026, 1, 31), now - timedelta(minutes=9), complete=False)
    claim(dead, "backfill__other", now - timedelta(seconds=backfill.CLAIM_STALE_S + 1))
    assert backfill.pending("contents", run) is None
    own = entry("contents", date(2026, 1, 1), date(2026, 1, 31), now - timedelta(minutes=1), complete=False)
    claim(own, run.run_id, now)  # the run's own earlier attempt: it died, its retry reads again
    assert backfill.pending("contents", run) is None
    claim(own, "backfill__other", now)
    assert backfill.pending("contents", run).path == own


class _NoRequests:
    stats: dict = {}


def test_the_cache_filters_dated_items_by_day_and_copies_the_directory_whole():
    """Account events read the accounts file, but its rows are creators' accounts, not dated items: a
    backfill run's copy of it keeps every row."""
    columns = backfill._event_timestamps()
    assert {"contents", "transactions", "payouts"} <= set(columns)
    assert not {"users", "profiles", "accounts"} & set(columns)
