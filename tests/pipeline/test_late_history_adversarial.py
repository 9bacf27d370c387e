"""Adversarial review of the late-history reopen (creator_sync.pipeline.late_history): an hourly run that
reads a late historic item while a creator_sync_history run is between its read and its `finish` finds the
account `requested`. The reopen changes that row's `requested_at` (store.history.history_reopen), and the
history run's `finish` closes a row only when its `requested_at` is still the one the read saw
(`history_sent(..., requested=...)`), so the account stays owed and the next history run sends the late item,
once. The control: with the check of `requested_at` off the in-progress run closes the row and the late
item is never sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from creator_sync.store.history import REQUESTED, SENT
from creator_sync.sync import history

from .factories import FakeInsiderHook
from .test_history_adversarial import FROM, HOUR, T, _content, _fleet, _send_with, _sent_items
from .test_history_late import WAIT, _connect, _hourly_read, history_row, late_state


@pytest.fixture
def state(monkeypatch, tmp_path):
    return late_state(monkeypatch, tmp_path)


def _read(state, hook, out, now):
    rows = history.due(state.history_due(10), now, WAIT.total_seconds())
    return history.read_due(hook, rows, out_dir=out, from_date=FROM, days=3) if rows else None


def _send_finish(state, insider, manifest, run_id):
    totals = history.send_windows(manifest, run_id=run_id, send=_send_with(state, insider))
    return history.finish(state, manifest, totals, run_id)


def _reopen_during_read(state, tmp_path):
    """acc-1's history read misses c-late; an hourly run reads c-late before the history run finishes.
    Returns the late item's sends and the row's status after the in-progress run's finish."""
    _connect(state)
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    late = _content("c-late", "acc-1", "u1", T - timedelta(days=2, hours=3))
    manifest = _read(state, hook, tmp_path / "h1", T)  # the job has not listed c-late yet
    hook.lists["contents"].append(late)
    assert history_row(state).status == REQUESTED  # the history run is in progress
    _hourly_read(state, hook, [late], tmp_path / "r1", T + HOUR)
    _send_finish(state, insider, manifest, "h1")
    status = history_row(state).status
    follow = _read(state, hook, tmp_path / "h2", T + 2 * HOUR)
    if follow is not None:
        _send_finish(state, insider, follow, "h2")
    return _sent_items(insider).count("c-late"), status


def test_a_late_item_read_while_the_history_run_is_in_progress_is_sent_once(state, tmp_path):
    sends, status = _reopen_during_read(state, tmp_path)
    assert status == REQUESTED  # the in-progress run did not close the row its read did not cover
    assert sends == 1
    assert history_row(state).status == SENT


def test_control_without_the_requested_at_check_the_late_item_is_lost(state, tmp_path, monkeypatch):
    monkeypatch.setattr(history, "read_marks", lambda manifest: None)  # the guard off: close whatever is read
    sends, status = _reopen_during_read(state, tmp_path)
    assert status == SENT
    assert sends == 0
