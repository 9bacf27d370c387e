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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.late_history import reopen_late_history
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.store.history import KNOWN, PENDING, REQUESTED, SENT, SKIPPED
from creator_sync.sync import history
from tests.store.stores import sqlite_stores

from .factories import FakeInsiderHook
from .test_history_adversarial import FROM, HOUR, T, _content, _fleet, _send_with, _sent_items
from .test_history_late import WAIT, _connect, _early_file, _hourly_read, history_row, late_state


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


# The property, on the real state store: an account's row in any status (`requested`: a history run has read
# it and finishes after the check), early items at seconds around its takeover (0: exactly at it, several in
# one second), the ledger holding some. After the check (and that run's finish), the row is owed iff it was
# sent or being read and some item before the takeover is not held; other rows do not change. 40 examples,
# a few seconds.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offsets=st.lists(st.sampled_from([-86_400, -3600, -1, -1, 0, 0, 1, 3600]), max_size=5),
    held=st.lists(st.booleans(), min_size=5, max_size=5),
    status=st.sampled_from([SENT, REQUESTED, PENDING, SKIPPED, KNOWN]),
)
def test_after_the_check_and_the_finish_a_row_is_owed_iff_an_unsent_early_item_was_read(
    tmp_path_factory, offsets, held, status
):
    out = tmp_path_factory.mktemp("late")
    state = sqlite_stores(out)()
    first = KNOWN if status == KNOWN else PENDING
    state.note_accounts(["acc-1"], source="snapshot", takeover_at=T, status=first, at=T - HOUR)
    if status in (SENT, REQUESTED, SKIPPED):
        state.history_requested(["acc-1"], T - HOUR)
    if status == SENT:
        state.history_sent(["acc-1"], "h0", T)
    elif status == SKIPPED:
        state.history_skipped(["acc-1"], "account_not_found", T)
    read = {r.account_id: r.requested_at for r in state.history_accounts(["acc-1"])}  # a run reading it
    moments = [T + timedelta(seconds=o) for o in offsets]
    keys = _early_file(out / "early.parquet", moments)
    held_keys = {keys[f"c{k}"] for k in range(len(moments)) if held[k]}
    state.record_batch(
        run_id="h0", batch_key="b0", events=[(k, "u1") for k in held_keys], hashes=[], failures=[]
    )
    reopen_late_history(out / "early.parquet", state, mapping=load_mapping(), due_from=T + HOUR)
    if status == REQUESTED:
        state.history_sent(["acc-1"], "h1", T + 2 * HOUR, requested=read)
    late = any(m < T and not held[k] for k, m in enumerate(moments))
    after = history_row(state).status
    if status in (SENT, REQUESTED):
        assert after == (REQUESTED if late else SENT)
    else:
        assert after == status
