"""The sender as a run sees it: dry run, claims between concurrent runs, run-level totals across task
attempts, lines that are not users."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from creator_sync.pipeline.report import build_summary, run_send_totals
from creator_sync.pipeline.send import ClaimsHeldElsewhere, send_file
from creator_sync.store import StateStore
from creator_sync.store import engine as engine_module
from creator_sync.store import schema as state_module

from .factories import FakeInsiderHook, content
from .test_send import creators, six_creators_with_three_events_each, transform


@pytest.fixture
def state(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def send(result, state, hook, run_id="run-1", **kw):
    return send_file(
        result.users_path, rejected_path=result.rejected_path, state=state, hook=hook, run_id=run_id, **kw
    )


def rows(state: StateStore, table) -> int:
    import sqlalchemy as sa

    with state.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# -- dry run ----------------------------------------------------------------------------------------------


def test_dry_run_reports_what_would_be_sent_and_writes_nothing(fetched, tmp_path, state):
    result = transform(fetched, tmp_path, "t")  # 1 valid creator (2 events), 3 rejected
    hook = FakeInsiderHook()
    report = send(result, state, hook, dry_run=True)

    assert hook.requests == [] and hook.profile_calls == 0
    assert report.dry_run and (report.users_sent, report.requests) == (1, 1)
    assert report.events_sent == result.stats.events_written > 0
    assert sum(report.rejected.values()) == 3
    for table in (
        state_module.acknowledged_events,
        state_module.user_attribute_hashes,
        state_module.dead_letters,
        state_module.in_flight_batches,
        state_module.run_users,
        state_module.send_claims,
    ):
        assert rows(state, table) == 0, table.name
    summary = build_summary("run-1", result.stats, report)
    assert summary.reconciled, summary.render()
    assert summary.render().startswith("**DRY RUN: would send 1 users, 2 events in 1 requests; unchanged 0;")

    # the real run afterwards sends exactly what the dry run announced
    real = send(result, state, FakeInsiderHook())
    assert (real.users_sent, real.events_sent, real.requests) == (1, 2, 1)


# -- claims between concurrent runs -------------------------------------------------------------------------


class InterleavingHook(FakeInsiderHook):
    """Runs `during_first_request` while its first upsert request is 'in the network'."""

    def __init__(self, during_first_request, **kw):
        super().__init__(**kw)
        self.during_first_request = during_first_request

    def upsert_batch(self, batch, **kw):
        if self.during_first_request is not None:
            action, self.during_first_request = self.during_first_request, None
            action()
        return super().upsert_batch(batch, **kw)


class _CountingStore(StateStore):
    """The same state store (another connection pool), counting the claim calls of the run that uses it."""

    claims = 0

    def claim(self, *args, **kw):
        held = super().claim(*args, **kw)
        self.claims += 1
        return held


def _overlapping_runs(state, result_a, result_b, **kw) -> tuple[FakeInsiderHook, FakeInsiderHook, dict]:
    """Run B starts while run A's first request is in the network; A goes on once B has asked twice for the
    users A holds (the sender asks again at once before it puts users aside), or B has ended."""
    second, reports, threads = FakeInsiderHook(per_batch=6), {}, []
    b_state = _CountingStore(str(state.engine.url))

    def other_run_starts_meanwhile():
        def run_b():
            reports["B"] = send(result_b, b_state, second, run_id="run-B", **kw)

        threads.append(threading.Thread(target=run_b, daemon=True))
        threads[0].start()
        deadline = time.monotonic() + 60
        while b_state.claims < 2 and threads[0].is_alive():
            assert time.monotonic() < deadline, "the other run never asked for its claims"
            time.sleep(0.01)

    first = InterleavingHook(other_run_starts_meanwhile, per_batch=6)
    reports["A"] = send(result_a, state, first, run_id="run-A", **kw)
    threads[0].join(timeout=120)
    assert not threads[0].is_alive() and "B" in reports
    return first, second, reports


def test_a_run_waits_for_users_another_live_run_holds_then_sends_only_what_is_new(fetched, tmp_path, state):
    """Same data in both runs (a re-run of the same interval beside the scheduled one): B waits for A's
    users, then finds every event acknowledged and the attributes unchanged."""
    result = six_creators_with_three_events_each(fetched, tmp_path)
    first, second, reports = _overlapping_runs(state, result, result)
    delivered = first.sent_events() + second.sent_events()
    assert len(delivered) == 18 and max(Counter(delivered).values()) == 1
    assert second.requests == [] and reports["B"].waited_for_other_runs == 6
    assert (reports["B"].unchanged, reports["B"].events_already_acknowledged) == (6, 18)
    assert rows(state, state_module.send_claims) == 0  # both released
    b = build_summary("run-B", result.stats, run_send_totals(state, "run-B", result.stats))
    assert b.reconciled and b.claimed_elsewhere == 0, b.render()


def _another_interval(fetched, tmp_path):
    """The same six creators with three other posts each (the next interval's events)."""
    users, profiles = creators(6)
    contents = [content(f"next{i}", f"u{i % 6}", "2024-05-01T10:00:00Z") for i in range(18)]
    return transform(fetched, tmp_path, "t-next", users=users, profiles=profiles, contents=contents)


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "guard-off"])
def test_overlapping_runs_of_different_intervals_each_deliver_their_own_events(
    fetched, tmp_path, state, wait
):
    """Two backfill days (or a backfill beside the scheduled run) hold different events for the same users:
    the run that finds the users claimed sends its own events once the other lets them go. With the guard
    off (the users skipped as if the other run carried them) the second interval's events are lost."""
    a, b = six_creators_with_three_events_each(fetched, tmp_path), _another_interval(fetched, tmp_path)
    first, second, reports = _overlapping_runs(state, a, b, wait_for_claims=wait)
    delivered = Counter(first.sent_events() + second.sent_events())
    assert max(delivered.values()) == 1  # nothing twice either way
    if wait:
        assert len(delivered) == 36 and reports["B"].events_sent == 18
        assert reports["B"].waited_for_other_runs == 6 and reports["B"].claimed_elsewhere == 0
    else:
        assert len(delivered) == 18 and reports["B"].claimed_elsewhere == 6


def test_claims_of_a_dead_run_are_taken_over_after_their_lease(fetched, tmp_path, state, monkeypatch):
    result = six_creators_with_three_events_each(fetched, tmp_path)
    keys = [f"u{i}" for i in range(6)]
    assert state.claim("run-dead", keys, lease_s=600) == set(keys)  # a run that died holding them
    assert state.claim("run-B", keys, lease_s=600) == set()  # live lease: not taken

    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "0")
    hook = FakeInsiderHook(per_batch=6)
    with pytest.raises(
        ClaimsHeldElsewhere, match=r"6 user\(s\) stayed claimed by other live run\(s\) \['run-dead'\]"
    ):
        send(result, state, hook, run_id="run-B")
    assert hook.requests == []  # nothing sent; the task's retry sends them

    clock = [engine_module.time.time() + 601]  # the dead run's lease has passed
    monkeypatch.setattr(engine_module.time, "time", lambda: clock[0])
    hook = FakeInsiderHook(per_batch=6)
    taken = send(result, state, hook, run_id="run-C")
    assert taken.users_sent == 6 and len(hook.sent_events()) == 18
    # a retried attempt of the same run takes its own (live) claims back at once
    assert state.claim("run-C", keys, lease_s=600) == set(keys)


def test_an_unanswered_batch_of_a_live_sender_is_left_to_that_sender(fetched, tmp_path, state, monkeypatch):
    result = six_creators_with_three_events_each(fetched, tmp_path)
    crashing = FakeInsiderHook(per_batch=2, crash_after=1, lost_answer=True)
    with pytest.raises(ConnectionError):
        send(result, state, crashing, run_id="run-A")
    (marker,) = state.in_flight_markers()
    # the sender is still alive (a stalled attempt): it holds the marker's users and renews its lease
    state.claim("run-A", [u["user_key"] for u in marker.record["users"]], lease_s=600, fence=marker.fence)
    state.renew(marker.fence, 600)

    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "0")
    other = FakeInsiderHook(per_batch=2)
    with pytest.raises(ClaimsHeldElsewhere):  # B sends the rest and fails on the users the live sender holds
        send(result, state, other, run_id="run-B")
    assert other.profile_calls == 0 and len(state.in_flight()) == 1  # not probed by another run


# -- the run's figures over its task attempts ------------------------------------------------------------


def test_a_retried_send_reports_the_run_not_its_last_attempt(fetched, tmp_path, state):
    result = six_creators_with_three_events_each(fetched, tmp_path)
    with pytest.raises(ConnectionError):
        send(result, state, FakeInsiderHook(per_batch=2, crash_after=2), run_id="run-1")
    last_attempt = send(result, state, FakeInsiderHook(per_batch=2), run_id="run-1")
    assert (last_attempt.users_sent, last_attempt.unchanged) == (2, 4)  # what the attempt alone saw

    totals = run_send_totals(state, "run-1", result.stats)
    assert (totals.users_sent, totals.events_sent, totals.unchanged) == (6, 18, 0)
    assert totals.events_already_acknowledged == 0  # acknowledged by this run's own first attempt
    summary = build_summary("run-1", result.stats, totals)
    assert summary.reconciled and summary.sent == 6, summary.render()


def test_client_counters_of_every_attempt_add_up(state):
    state.save_client_stats("r", "upsert", 1, "Insider", {"requests": 5, "retries": 2, "rate_limited_429": 1})
    state.save_client_stats("r", "upsert", 2, "Insider", {"requests": 3, "retries": 1, "rate_limited_429": 0})
    state.save_client_stats("r", "upsert", 2, "Insider", {"requests": 4, "retries": 1, "rate_limited_429": 0})
    state.save_client_stats("r", "fetch_account_shard[0]", 1, "InsightIQ", {"requests": 7, "retries": 0})
    state.save_client_stats("other", "upsert", 1, "Insider", {"requests": 100})
    totals = state.run_client_totals("r")
    assert totals["Insider"] == {"requests": 9, "retries": 3, "rate_limited_429": 1}  # attempt 2 replaced
    assert totals["InsightIQ"] == {"requests": 7, "retries": 0}


# -- lines that are not users ------------------------------------------------------------------------------


def test_lines_that_are_not_user_objects_become_dead_letters(tmp_path, state):
    path = tmp_path / "users.jsonl"
    good = {"identifiers": {"uuid": "a"}, "attributes": {"name": "A"}}
    path.write_text("\n".join([json.dumps(good), "{not json", "[1, 2]", ""]) + "\n")
    hook = FakeInsiderHook()
    report = send_file(path, state=state, hook=hook, run_id="r")
    assert report.users_sent == 1 and report.rejected == {"malformed_source_record": 2}
    details = sorted(dl.detail for dl in state.dead_letters(reasons=["malformed_source_record"]))
    assert details == [
        "users.jsonl line 2 is not valid JSON (Expecting property name enclosed in double quotes)",
        "users.jsonl line 3 is a JSON list, not a user object",
    ]


def test_a_dry_run_of_new_events_counts_them_without_acknowledging(fetched, tmp_path, state):
    users, profiles = creators(2)
    day = [content("c1", "u0", "2024-05-01T10:00:00Z")]
    result = transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=day)
    send(result, state, FakeInsiderHook())
    again = send(result, state, FakeInsiderHook(), run_id="run-2", dry_run=True)
    assert (again.users_sent, again.unchanged, again.events_already_acknowledged) == (0, 2, 1)


def test_unification_errors_reported_by_callback_count_for_the_run_that_sent_the_user(state):
    from creator_sync.pipeline.transform import TransformStats
    from creator_sync.webhooks.dead_letters import record_unification_errors

    state.record_outcomes("run-1", [("u1", "sent", 1), ("u2", "sent", 0), ("u3", "unchanged", 0)])
    users = [{"identifiers": {"uuid": u}} for u in ("u1", "u3", "elsewhere")]
    record_unification_errors(users, reason="unification_error", store=state)  # Insider's callback
    stats = TransformStats(fetched_creators=3, users_written=3)
    summary = build_summary("run-1", stats, run_send_totals(state, "run-1", stats))
    assert summary.unification_errors == 1 and summary.reconciled  # u1 only: u3 was not sent by the run
    assert "Insider reported 1 sent user(s) failing unification" in summary.render()
