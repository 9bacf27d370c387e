"""The history rows' reopen (creator_sync.store.history.AccountHistory.history_reopen): a `sent` account's
past owed again when a run reads an item of it the history path has not sent; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from creator_sync.store.history import (
    ACCOUNT_NOT_FOUND,
    KNOWN,
    PENDING,
    REQUESTED,
    SENT,
    SKIPPED,
)

from .stores import dialect_store

T = datetime(2026, 12, 6, 10, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path):
    with dialect_store(request.param, tmp_path, "creator_sync_history_reopen", "history reopen") as store:
        yield store


def _fleet(state) -> None:
    """One row of each status: sent, pending, requested, skipped, known."""
    state.note_accounts(["sent", "pending", "requested", "skipped"], source="snapshot", takeover_at=T, at=T)
    state.note_accounts(["known"], source="baseline", takeover_at=None, status=KNOWN, at=T)
    state.history_requested(["sent", "requested", "skipped"], T + timedelta(minutes=5))
    state.history_sent(["sent"], "h1", T + timedelta(minutes=20))
    state.history_skipped(["skipped"], ACCOUNT_NOT_FOUND, T + timedelta(minutes=20))


def _statuses(state) -> dict[str, tuple[str, datetime | None]]:
    return {r.account_id: (r.status, r.requested_at) for r in state.history_accounts()}


def test_a_sent_row_is_owed_again_and_due_from_the_given_moment(state):
    _fleet(state)
    assert state.history_sent_takeovers(["sent", "pending", "requested", "skipped", "known", "none"]) == {
        "sent": T
    }
    before = _statuses(state)
    due_from = T - timedelta(days=1)
    assert state.history_reopen(["sent", "pending", "requested", "skipped", "known", "none"], due_from) == 1
    after = _statuses(state)
    assert after["sent"] == (REQUESTED, due_from)
    # a requested row (a history run may be reading it) stays requested, 1 us earlier: see history_sent
    assert after["requested"] == (REQUESTED, before["requested"][1] - timedelta(microseconds=1))
    same = {"sent", "requested"}
    assert {a: v for a, v in after.items() if a not in same} == {
        a: v for a, v in before.items() if a not in same
    }
    assert after["pending"][0] == PENDING and after["skipped"][0] == SKIPPED and after["known"][0] == KNOWN
    assert "sent" in [r.account_id for r in state.history_due(10)]  # the history run takes it again


def test_reopen_is_idempotent_and_the_next_send_closes_the_row_again(state):
    _fleet(state)
    assert state.history_reopen(["sent"], T) == 1
    assert state.history_reopen(["sent"], T + timedelta(hours=1)) == 0  # already owed: none reopened
    assert _statuses(state)["sent"] == (REQUESTED, T - timedelta(microseconds=1))  # marked, due as before
    assert state.history_sent_takeovers(["sent"]) == {}  # owed rows are not checked again
    state.history_sent(["sent"], "h2", T + timedelta(hours=2))
    assert _statuses(state)["sent"][0] == SENT
    assert state.history_sent_takeovers(["sent"]) == {"sent": T}


def test_many_accounts_are_checked_and_reopened_in_chunks(state):
    ids = [f"acc-{i:04d}" for i in range(1_203)]  # more than one IN chunk (store.engine.IN_CHUNK)
    state.note_accounts(ids, source="snapshot", takeover_at=T, at=T)
    state.history_requested(ids, T)
    state.history_sent(ids[::2], "h1", T)
    assert set(state.history_sent_takeovers(ids)) == set(ids[::2])
    assert state.history_reopen(ids, T) == len(ids[::2])
    assert state.history_sent_takeovers(ids) == {}


def test_a_read_of_a_row_reopened_since_does_not_close_it(state):
    """history_sent with the `requested_at` the read saw: a row reopened after that read stays owed; one
    not reopened is closed; a second read that saw the new value closes it."""
    _fleet(state)
    seen = {r.account_id: r.requested_at for r in state.history_accounts(["requested", "sent"])}
    state.history_reopen(["requested"], T + timedelta(hours=1))  # a late item while the run reads
    state.history_sent(["requested"], "h1", T + timedelta(hours=2), requested=seen)
    assert _statuses(state)["requested"][0] == REQUESTED
    again = {r.account_id: r.requested_at for r in state.history_accounts(["requested"])}
    state.history_sent(["requested"], "h2", T + timedelta(hours=3), requested=again)
    assert _statuses(state)["requested"][0] == SENT
