"""creator_sync.progress: throttled progress lines with rate and ETA (injected clock, no sleeping)."""

from __future__ import annotations

import logging

import pytest

from creator_sync.progress import INTERVAL_ENV, Progress, track


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "creator_sync.progress"]


def test_at_most_one_line_per_interval(caplog):
    caplog.set_level(logging.INFO, "creator_sync.progress")
    clock = Clock()
    progress = Progress("fetch accounts", total=100, unit="pages", interval=5, clock=clock)
    for _ in range(39):  # 39 pages over 4.875 s: below the interval, silent
        clock.t += 0.125
        progress.advance(1, records=100)
    assert lines(caplog) == []
    clock.t += 0.125  # 5 s since the start
    progress.advance(1, records=100)
    assert lines(caplog) == ["fetch accounts: 40/100 pages (40%), records 4000, 8.0 pages/s, ETA 8 s"]
    clock.t += 1.0
    progress.advance(1, records=100)
    assert len(lines(caplog)) == 1  # 1 s after the last line


def test_unknown_total_has_no_eta_and_a_short_loop_stays_quiet(caplog):
    caplog.set_level(logging.INFO, "creator_sync.progress")
    clock = Clock()
    progress = Progress("transform", unit="rows", interval=60, clock=clock)
    clock.t += 2
    progress.advance(5000, chunks=1)
    progress.done()
    assert lines(caplog) == []  # 2 s < the interval: nothing to report
    progress.done(always=True)
    assert lines(caplog) == ["transform: 5000 rows, chunks 1, 2,500 rows/s; finished in 2 s"]


def test_track_yields_every_item_and_reads_gauges_when_it_logs(caplog):
    caplog.set_level(logging.INFO, "creator_sync.progress")
    clock, sent = Clock(), {"users": 0}

    def batches():
        for i in range(3):
            clock.t += 4
            sent["users"] += 100
            yield i

    got = list(track(batches(), "upsert", unit="batches", interval=5, clock=clock, gauges=lambda: dict(sent)))
    assert got == [0, 1, 2]
    assert lines(caplog) == [
        "upsert: 2 batches, users 200 (25.0/s), 0.2 batches/s",
        "upsert: 3 batches, users 300 (25.0/s), 0.2 batches/s; finished in 12 s",
    ]


def test_eta_counts_down_and_disappears_when_complete():
    clock = Clock()
    progress = Progress("upsert", total=10, unit="batches", interval=1e9, clock=clock)
    clock.t += 60
    progress.advance(2)
    assert progress.line().endswith("ETA 4 min 00 s")
    clock.t += 240
    progress.advance(8)
    assert "ETA" not in progress.line()
    assert progress.line().startswith("upsert: 10/10 batches (100%)")


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert Progress("x").interval == 2.5
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    with pytest.raises(
        ValueError, match="CREATOR_SYNC_PROGRESS_INTERVAL_S='soon' is invalid: allowed is a number >= 0"
    ):
        Progress("x")
