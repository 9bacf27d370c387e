"""Interleavings of history runs and late-item reopens on one account's history row (store.history):
hypothesis draws sequences of steps - a history run's read (it notes the row's `requested_at`), that run's
finish (``history_sent`` with what its read saw), an hourly run's reopen (``history_reopen``: a late item
InsightIQ listed after every read so far) - over runs that overlap or not. The property: the row is closed
(`sent`) only by a run whose read came after the last reopen, so a late item is always read by the run that
closes the row, and a row with no reopen after the last closing read stays closed (each late item is read
once more, not again and again). The control: `history_sent` without the read's `requested_at` (the guard
off) closes a row reopened during the read. SQLite; 60 examples, a few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.store.history import REQUESTED, SENT

from .stores import sqlite_stores

T = datetime(2026, 12, 6, 10, tzinfo=UTC)
RUNS = 3  # history runs that may overlap (a retried finish, a run taking longer than an hour)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, RUNS - 1)),
        st.tuples(st.just("finish"), st.integers(0, RUNS - 1)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=12,
)


def _row(state):
    return state.history_accounts(["acc"])[0]


def _play(state, steps, guard: bool = True) -> list[str]:
    """Run `steps` on a fresh row (requested at T, sent by no run yet); returns the violations."""
    state.note_accounts(["acc"], source="snapshot", takeover_at=T, at=T)
    state.history_requested(["acc"], T)
    seen: dict[int, tuple[datetime, int]] = {}  # run -> (requested_at its read saw, reopens before it)
    reopens, closed_by = 0, []
    errors = []
    for n, (kind, run) in enumerate(steps):
        row = _row(state)
        if kind == "read" and row.status == REQUESTED:
            seen[run] = (row.requested_at, reopens)
        elif kind == "finish" and run in seen:
            at, known = seen.pop(run)
            state.history_sent(
                ["acc"], f"h{run}", T + timedelta(minutes=n), requested={"acc": at} if guard else None
            )
            if _row(state).status == SENT and row.status != SENT:
                closed_by.append(known)
                if known < reopens:
                    errors.append(f"step {n}: run {run} closed the row its read missed a late item of")
        elif kind == "reopen":
            reopens += 1
            state.history_reopen(["acc"], T + timedelta(minutes=n))
    if _row(state).status == SENT and closed_by and closed_by[-1] < reopens:
        errors.append("the row ends closed with a late item no read saw")
    return errors


@pytest.fixture
def stores(tmp_path):
    return sqlite_stores(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_a_run_closes_the_row_only_when_its_read_came_after_every_reopen(stores, steps):
    assert _play(stores(), steps) == []


def test_control_without_the_read_mark_a_run_closes_a_row_reopened_during_its_read(stores):
    steps = [("read", 0), ("reopen", 0), ("finish", 0)]
    assert _play(stores(), steps) == []
    assert _play(stores(), steps, guard=False) == [
        "step 2: run 0 closed the row its read missed a late item of",
        "the row ends closed with a late item no read saw",
    ]
