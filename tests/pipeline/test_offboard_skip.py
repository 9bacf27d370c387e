"""creator_sync skips offboarded creators before the transform writes anything for them, and the report
still reconciles (they are counted as offboarded)."""

from __future__ import annotations

import json

from creator_sync.pipeline.report import build_summary, run_send_totals
from creator_sync.pipeline.send import SendReport, _Planner, send_file
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import OffboardingState, StateStore, offboarded_ids

from .factories import END, START, FakeInsiderHook


def _run(fetched, tmp_path, name, **kwargs):
    return transform_run(fetched(), start=START, end=END, out_dir=tmp_path / name, **kwargs)


def test_offboarded_creator_is_not_written_anywhere_and_reconciles(fetched, tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    OffboardingState(store).mark_offboarded("u1", "operator_request")

    result = _run(fetched, tmp_path, "out", offboarded=lambda ids: offboarded_ids(ids, store))
    written = result.users_path.read_text() + result.rejected_path.read_text()
    assert '"u1"' not in written and "ada@example.com" not in written.lower()
    assert result.stats.offboarded == 1 and result.stats.fetched_creators == 4

    send = SendReport(users_sent=result.stats.users_written, rejected=dict(result.stats.rejected))
    summary = build_summary("r", result.stats, send)
    assert summary.offboarded == 1 and summary.reconciled, summary.reconciliation_line()
    assert "1 offboarded" in summary.reconciliation_line()


def test_without_the_skip_the_creator_is_sent(fetched, tmp_path):
    """The guard switched off: the same creator reaches users.jsonl."""
    result = _run(fetched, tmp_path, "plain")
    uuids = [json.loads(line)["identifiers"]["uuid"] for line in result.users_path.read_text().splitlines()]
    assert "u1" in uuids and result.stats.offboarded == 0


def test_reenabled_creator_is_transformed_again(fetched, tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state = OffboardingState(store)
    state.mark_offboarded("u1", "all_accounts_disconnected")
    state.reenable("u1")
    result = _run(fetched, tmp_path, "back", offboarded=lambda ids: offboarded_ids(ids, store))
    assert result.stats.offboarded == 0 and '"u1"' in result.users_path.read_text()


def test_a_creator_pending_offboarding_is_still_sent(fetched, tmp_path):
    """A queued offboarding request (ACCOUNTS.DISCONNECTED, creator_offboard not run yet) is no verdict: the
    rule may not hold (another account still connected), so the run that carries the disconnect - its
    account_disconnected event, its clears - sends the creator. Only the skip list skips."""
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    OffboardingState(store).queue(
        user_id="u1", account_id="a1", reason="accounts_disconnected", source="webhook"
    )
    result = _run(fetched, tmp_path, "pending", offboarded=lambda ids: offboarded_ids(ids, store))
    assert result.stats.offboarded == 0 and '"u1"' in result.users_path.read_text()


def _users_of(hook) -> set[str]:
    return {u["identifiers"]["uuid"] for req in hook.requests for u in req}


def _transform_then_offboard(fetched, tmp_path, store):
    """The window the send-time check closes: the transform ran before the creator went on the skip list."""
    result = _run(fetched, tmp_path, "t", offboarded=lambda ids: offboarded_ids(ids, store))
    assert '"u1"' in result.users_path.read_text()
    OffboardingState(store).mark_offboarded("u1", "all_accounts_disconnected")
    return result


def test_creator_offboarded_after_the_transform_is_not_sent_and_the_run_reconciles(fetched, tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    result = _transform_then_offboard(fetched, tmp_path, store)

    hook = FakeInsiderHook(per_batch=10)
    send = send_file(
        result.users_path, rejected_path=result.rejected_path, state=store, hook=hook, run_id="r"
    )
    assert "u1" not in _users_of(hook) and send.users_sent == 0
    assert send.offboarded == 1

    totals = run_send_totals(store, "r", result.stats)  # the run's figures over all attempts, as reported
    summary = build_summary("r", result.stats, totals)
    assert totals.offboarded == 1 and summary.offboarded == 1
    assert summary.reconciled, summary.reconciliation_line()


def test_without_the_send_time_check_the_offboarded_creator_is_upserted(fetched, tmp_path, monkeypatch):
    """The guard switched off: the creator erased after the transform is upserted again."""
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    result = _transform_then_offboard(fetched, tmp_path, store)
    monkeypatch.setattr(_Planner, "_not_offboarded", lambda self, prepared: prepared)

    hook = FakeInsiderHook(per_batch=10)
    send_file(result.users_path, rejected_path=result.rejected_path, state=store, hook=hook, run_id="r")
    assert "u1" in _users_of(hook)
