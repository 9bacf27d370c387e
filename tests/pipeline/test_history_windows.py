"""The history path's arithmetic (creator_sync.sync.history): the windows tile [from_date, takeover) and
the hourly runs own [takeover, ...), with no gap and no overlap; the selection of first-seen accounts; the
state record that makes an account's past owed once."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creator_sync.store import HistoryAccount, StateStore
from creator_sync.sync import history
from creator_sync.sync.history import history_windows, select_new_accounts, takeover_at, window_days

T = datetime(2026, 12, 6, 14, tzinfo=UTC)


def owner(moment: datetime, windows, takeover: datetime) -> list[str]:
    """Who sends an event stamped `moment`: each history window containing it, and the hourly run of its
    interval when that interval starts at or after the takeover (the transform's half-open cut)."""
    owners = [f"history {a:%Y-%m-%d}" for a, b in windows if a <= moment < b]
    if moment >= takeover:
        owners.append(f"hourly {moment:%Y-%m-%dT%H}")
    return owners


def test_windows_tile_the_past_up_to_the_takeover():
    windows = history_windows(date(2026, 1, 1), T, 100)
    assert windows[0][0] == datetime(2026, 1, 1, tzinfo=UTC)
    assert windows[-1][1] == T
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(windows))
    assert all(b - a <= timedelta(days=100) for a, b in windows)
    assert len(windows) == 4


def test_same_second_items_at_the_boundary_go_to_the_hourly_run_only():
    windows = history_windows(date(2026, 11, 1), T, 31)
    assert owner(T, windows, T) == ["hourly 2026-12-06T14"]
    assert owner(T - timedelta(microseconds=1), windows, T) == ["history 2026-12-02"]
    # whole-day reads: the last window's read covers the takeover's day; the transform cuts at T
    assert window_days(windows[-1]) == ("2026-12-02", "2026-12-06")
    assert window_days((T - timedelta(days=1), T.replace(hour=0))) == ("2026-12-05", "2026-12-05")


def test_no_window_when_the_from_date_is_not_before_the_takeover():
    assert history_windows(T.date(), T.replace(hour=0), 10) == []
    assert history_windows(date(2027, 1, 1), T, 10) == []
    with pytest.raises(ValueError):
        history_windows(date(2026, 1, 1), T, 0)


def test_takeover_is_the_start_of_the_hour_after_the_one_first_seen_in():
    assert takeover_at(datetime(2026, 12, 6, 13, 59, 59, 999999, tzinfo=UTC)) == T
    assert takeover_at(T - timedelta(hours=1)) == T
    assert takeover_at(T) == T + timedelta(hours=1)


@settings(max_examples=200, deadline=None)
@given(
    from_day=st.dates(date(2019, 1, 1), date(2026, 12, 6)),
    seen=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)),
    days=st.integers(1, 400),
    probe=st.datetimes(datetime(2018, 1, 1), datetime(2027, 6, 1)),
)
def test_every_moment_has_exactly_one_owner(from_day, seen, days, probe):
    """Property: from from_date on (or the takeover, when that is earlier), every moment (down to the
    microsecond) is sent by exactly one history window or one hourly run; before it, by none. A moment before
    the account was first seen (an item posted before the connect) is a history window's."""
    takeover = takeover_at(seen.replace(tzinfo=UTC))
    windows = history_windows(from_day, takeover, days)
    moment = probe.replace(tzinfo=UTC)
    start = datetime(from_day.year, from_day.month, from_day.day, tzinfo=UTC)
    expected = 1 if moment >= min(start, takeover) else 0
    assert len(owner(moment, windows, takeover)) == expected
    if start <= moment < seen.replace(tzinfo=UTC):  # posted before the account was first seen
        assert any(a <= moment < b for a, b in windows), "an item before the connect is left to an hourly run"
    for a, b in windows:
        first, last = window_days((a, b))
        assert first <= a.date().isoformat() and last >= (b - timedelta(microseconds=1)).date().isoformat()


def test_a_takeover_at_the_hour_first_seen_is_caught():
    """The guard: a takeover at the start of the hour first seen in leaves an item posted before the connect
    in that hour to the hourly run, which read its interval before InsightIQ's first sync listed it."""
    from creator_sync.store.history import hour_floor

    seen = T + timedelta(minutes=59)
    windows = history_windows(date(2026, 12, 1), hour_floor(seen), 31)
    assert not any(a <= T + timedelta(minutes=10) < b for a, b in windows)
    assert any(
        a <= T + timedelta(minutes=10) < b
        for a, b in history_windows(date(2026, 12, 1), takeover_at(seen), 31)
    )


def test_a_broken_window_cut_is_caught():
    """The guard: windows that end at the end of the takeover's day (whole days, no cut) overlap the hourly
    runs, and the property finds the moment sent twice."""
    windows = history_windows(date(2026, 12, 1), T, 31)
    a, _ = windows[-1]
    broken = [*windows[:-1], (a, T.replace(hour=0) + timedelta(days=1))]
    assert len(owner(T + timedelta(minutes=5), broken, T)) == 2


def test_selection_baselines_the_first_run_and_then_takes_only_new_accounts():
    first = select_new_accounts(["a", "b"], [], started=False)
    assert (first.new, first.baseline) == ([], ["a", "b"])
    later = select_new_accounts(["a", "b", "c", "d"], ["a", "b", "d"], started=True)
    assert (later.new, later.baseline) == (["c"], [])


@pytest.fixture
def state(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def test_an_account_is_owed_once_whoever_announces_it(state):
    seen = datetime(2026, 12, 6, 14, 20, tzinfo=UTC)
    assert history.discover(state, ["a", "b"], seen) == {"snapshot_accounts": 2, "new": 0, "baseline": 2}
    assert history.discover(state, ["a", "b", "c"], seen) == {"snapshot_accounts": 3, "new": 1, "baseline": 0}
    # the webhook receiver's row for an account the snapshot shows later: one row, the earlier takeover
    state.note_accounts(["d"], source="webhook", takeover_at=T - timedelta(hours=3), at=seen)
    assert history.discover(state, ["a", "b", "c", "d"], seen + timedelta(hours=1))["new"] == 0
    rows = {r.account_id: r for r in state.history_accounts()}
    assert rows["c"].takeover_at == T + timedelta(hours=1) and rows["d"].takeover_at == T - timedelta(hours=3)
    assert [r.account_id for r in state.history_due(10)] == ["c", "d"]
    assert [r.account_id for r in state.history_due(1)] == ["c"]  # bounded, oldest first

    state.history_requested(["c"], seen)
    state.history_sent(["c"], "run-1")
    assert [r.account_id for r in state.history_due(10)] == ["d"]
    assert history.discover(state, ["a", "b", "c", "d"], seen + timedelta(days=1))["new"] == 0
    assert [r.account_id for r in state.history_due(10)] == ["d"]


def test_webhook_rows_do_not_count_as_the_baseline(state):
    state.note_accounts(["w"], source="webhook", takeover_at=T, at=T)
    assert not state.history_started()
    assert history.discover(state, ["a", "w"], T)["baseline"] == 1
    assert {r.account_id: r.status for r in state.history_accounts()} == {"a": "known", "w": "pending"}


def test_due_waits_for_the_job_window():
    def row(account_id, status, requested_at):
        return HistoryAccount(account_id, "snapshot", T, T, status, requested_at, 0)

    rows = [
        row("a", "requested", T - timedelta(seconds=600)),
        row("b", "requested", T - timedelta(seconds=10)),
        row("c", "pending", None),
    ]
    assert [r.account_id for r in history.due(rows, T, 600)] == ["a"]
