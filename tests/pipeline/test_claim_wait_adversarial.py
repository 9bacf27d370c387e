"""Adversarial checks of the sender's wait for users another live run holds (send.py `_send_put_aside`):
runs that overlap with DIFFERENT data each deliver every event of theirs exactly once, without deadlock, on
SQLite and PostgreSQL, whatever the overlap and the timing (hypothesis)."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.report import build_summary, run_send_totals
from creator_sync.pipeline.send import ClaimsHeldElsewhere, send_users
from creator_sync.pipeline.transform import TransformStats
from creator_sync.store import StateStore

from .factories import FakeInsiderHook

_ids = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory):
    if request.param == "sqlite":
        yield StateStore(f"sqlite:///{tmp_path_factory.mktemp('claims') / 'state.db'}")
        return
    from devtools.celery_stack import scratch_state_store
    from devtools.services import require_postgres

    require_postgres("the claim-wait tests on PostgreSQL")
    with scratch_state_store("creator_sync_adv2") as state:
        yield state


@pytest.fixture
def fast_leases(monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", "0.6")  # put-aside passes every 0.2 s
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "30")


def creator(prefix: str, i: int, run: str, n_events: int = 2) -> dict:
    """Creator i as run `run` sees it: its own interval's events and its own snapshot's attributes."""
    return {
        "identifiers": {"uuid": f"{prefix}-u{i}"},
        "attributes": {"name": f"C{i} as of {run}"},
        "events": [
            {
                "event_name": "content_published",
                "timestamp": f"2026-01-01T10:{j:02d}:00Z",
                "event_params": {"name": f"{run}-{i}-{j}", "custom": {"content_id": f"{run}-{i}-{j}"}},
            }
            for j in range(n_events)
        ],
    }


class SlowHook(FakeInsiderHook):
    """A fake Insider whose requests take the given times (the interleaving), recording when each user's
    attributes landed."""

    def __init__(self, delays, landed, lock, **kw):
        super().__init__(**kw)
        self.delays, self.landed, self.lock = list(delays), landed, lock

    def upsert_batch(self, batch, **kw):
        time.sleep(self.delays.pop(0) if self.delays else 0)
        result = super().upsert_batch(batch, **kw)
        with self.lock:
            self.landed += [(u["identifiers"]["uuid"], u.get("attributes")) for u in batch.users]
        return result


def start_together(sends: dict) -> tuple[dict, dict]:
    """Each run's send (a callable) in its own thread, started together; returns reports, errors."""
    barrier, reports, errors = threading.Barrier(len(sends)), {}, {}

    def one(run):
        barrier.wait(timeout=30)
        try:
            reports[run] = sends[run]()
        except Exception as exc:  # reported, then asserted on
            errors[run] = exc

    threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a run never finished (deadlock?)"
    return reports, errors


def run_all(state, streams: dict[str, list[dict]], delays, per_batch=1, read_chunk=1, **kw):
    """Every run's send in its own thread, started together; returns hooks, reports, errors, landed."""
    landed, lock = [], threading.Lock()
    hooks = {r: SlowHook(delays.get(r, ()), landed, lock, per_batch=per_batch) for r in streams}
    reports, errors = start_together(
        {
            run: functools.partial(
                send_users,
                streams[run],
                state=state,
                hook=hooks[run],
                run_id=run,
                read_chunk=read_chunk,
                **kw,
            )
            for run in streams
        }
    )
    return hooks, reports, errors, landed


def delivered(hooks) -> Counter:
    return Counter(e for h in hooks.values() for e in h.sent_events())


def expected(streams) -> set:
    return {
        (u["identifiers"]["uuid"], e["event_name"], e["timestamp"], str(e["event_params"]["custom"]))
        for users in streams.values()
        for u in users
        for e in u["events"]
    }


def _norm(events: Counter) -> set:
    import json

    return {(a, b, c, str(json.loads(d))) for a, b, c, d in events}


overlaps = st.lists(st.frozensets(st.integers(0, 4), min_size=1, max_size=5), min_size=3, max_size=3)
timings = st.lists(st.sampled_from([0.0, 0.0, 0.005, 0.02]), max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    overlap=overlaps,
    delays=st.fixed_dictionaries({"A": timings, "B": timings, "C": timings}),
    orders=st.randoms(use_true_random=False),
    per_batch=st.integers(1, 3),
    read_chunk=st.integers(1, 3),
)
def test_three_runs_with_overlapping_creators_each_deliver_their_own_events_once(
    store, fast_leases, overlap, delays, orders, per_batch, read_chunk
):
    """Three runs (three intervals) send pairwise overlapping creators at once: every event of every run
    reaches Insider exactly once, no run fails or hangs, and no claim is left behind."""
    prefix = f"p{next(_ids)}"
    streams = {}
    for run, users in zip("ABC", overlap, strict=True):
        order = sorted(users)
        orders.shuffle(order)
        streams[run] = [creator(prefix, i, run) for i in order]
    hooks, _, errors, _ = run_all(store, streams, delays, per_batch=per_batch, read_chunk=read_chunk)
    assert not errors, errors
    got = delivered(hooks)
    assert max(got.values()) == 1, [e for e, n in got.items() if n > 1]
    assert _norm(got) == expected(streams)
    assert store.claim_holders(f"{prefix}-u{i}" for i in range(5)) == {}


def test_two_runs_each_holding_what_the_other_wants_both_finish(store, fast_leases):
    """A holds u0 and wants u1, B holds u1 and wants u0 (each claims its first creator, then asks for the
    other's while the other is still sending): no deadlock, both deliver their own events once."""
    for delay in (0.0, 0.02, 0.05):
        prefix = f"p{next(_ids)}"
        streams = {
            "A": [creator(prefix, 0, "A"), creator(prefix, 1, "A")],
            "B": [creator(prefix, 1, "B"), creator(prefix, 0, "B")],
        }
        hooks, _, errors, _ = run_all(store, streams, {"A": [delay] * 2, "B": [delay] * 2})
        assert not errors, errors
        got = delivered(hooks)
        assert max(got.values()) == 1 and _norm(got) == expected(streams)


def test_claim_wait_zero_fails_fast_and_the_retry_sends_the_rest(store, monkeypatch):
    """CREATOR_SYNC_CLAIM_WAIT_S=0: a run whose creators another live run holds sends everything else,
    raises ClaimsHeldElsewhere, and its retry sends the rest; the run's totals reconcile over both."""
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", "600")
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "0")
    prefix = f"p{next(_ids)}"
    users = [creator(prefix, i, "R") for i in range(3)]
    assert store.claim("holder", [f"{prefix}-u1"], 600, fence="holder#1#x") == {f"{prefix}-u1"}
    run_id = f"R-{prefix}"
    hook = FakeInsiderHook(per_batch=1)
    with pytest.raises(ClaimsHeldElsewhere):
        send_users(users, state=store, hook=hook, run_id=run_id)
    assert len(hook.sent_events()) == 4
    store.release_claims("holder", fence="holder#1#x")
    retry = FakeInsiderHook(per_batch=1)
    send_users(users, state=store, hook=retry, run_id=run_id)
    assert len(retry.sent_events()) == 2
    totals = run_send_totals(store, run_id, TransformStats())
    assert (totals.users_sent, totals.events_sent, totals.claimed_elsewhere) == (3, 6, 0)
    summary = build_summary(
        run_id, TransformStats(fetched_creators=3, users_written=3, events_written=6), totals
    )
    assert summary.reconciled, summary.render()


class DiesInFlight(FakeInsiderHook):
    """The holder's process dies during its first request (before or after it reached Insider): nothing
    more is written, so its claims, its lease and the request's in-flight marker stay behind."""

    def __init__(self, dying, reached: bool, **kw):
        super().__init__(**kw)
        self.dying, self.reached = dying, reached

    def upsert_batch(self, batch, *, before_attempt=None, **kw):
        from tests.exactly_once.harness import Killed

        if before_attempt is not None:
            before_attempt()
        if self.reached:
            self.requests.append([dict(u) for u in batch.users])
        self.dying.dead = True
        raise Killed("the holder's worker died in the request")


def _fast_takeover(monkeypatch, wait_s: int) -> None:
    """Short leases and settlement: a dead holder's claims pass in 0.6 s and its lost batch is settled with
    two quick probe rounds; a waiting run gives up after `wait_s`."""
    from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, PROBE_ROUNDS_ENV, SETTLE_ENV

    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", "0.6")
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", str(wait_s))
    monkeypatch.setenv(SETTLE_ENV, "0.05")
    monkeypatch.setenv(PROBE_ROUNDS_ENV, "2")
    monkeypatch.setenv(PROBE_BACKOFF_ENV, "0.05")


@pytest.mark.parametrize("reached", [True, False], ids=["request-reached-insider", "request-lost"])
def test_a_waiting_run_settles_the_dead_holders_lost_batch_before_sending_its_own(
    store, monkeypatch, reached
):
    """D claims u0,u1 and dies with its request in the network; W (another interval) finds them claimed,
    waits, takes the claims over when D's lease passes, settles D's marker with the Profile API (D's events
    recorded under D if they arrived, sent again under D if not, never blindly twice) and sends its own."""
    from tests.exactly_once.harness import Dying, Killed

    _fast_takeover(monkeypatch, wait_s=30)
    prefix = f"p{next(_ids)}"
    d_users = [creator(prefix, i, "D") for i in range(2)]
    w_users = [creator(prefix, i, "W") for i in range(3)]
    dying = Dying(store)
    dead = DiesInFlight(dying, reached, per_batch=2)
    with pytest.raises(Killed):
        send_users(d_users, state=dying, hook=dead, run_id=f"D-{prefix}")
    assert len(store.in_flight_markers()) >= 1
    assert set(store.claim_holders([f"{prefix}-u0", f"{prefix}-u1"])) == {f"{prefix}-u0", f"{prefix}-u1"}

    waiter = FakeInsiderHook(per_batch=2)
    waiter.stored_by_others = dead.sent_users()  # what reached the shared Insider
    report = send_users(w_users, state=store, hook=waiter, run_id=f"W-{prefix}")

    got = Counter(dead.sent_events() + waiter.sent_events())
    assert max(got.values()) == 1, [e for e, n in got.items() if n > 1]
    assert _norm(got) == expected({"D": d_users, "W": w_users})
    assert report.waited_for_other_runs == 2 and report.in_flight_confirmed == (2 if reached else 0)
    assert [m for m in store.in_flight_markers() if prefix in str(m.record)] == []
    d_totals = run_send_totals(store, f"D-{prefix}", TransformStats())
    assert (d_totals.users_sent, d_totals.events_sent) == (2, 4)  # the dead run's figures, settled


def _after(seconds: float, action) -> threading.Thread:
    def later():
        time.sleep(seconds)
        action()

    t = threading.Thread(target=later, daemon=True)
    t.start()
    return t


def test_two_attempts_of_one_run_waiting_for_the_same_creator_send_it_once(store, fast_leases):
    """A zombie attempt and the retry of the same run both wait for a creator another run holds; once it
    is released they race for it: its events go out once, and both attempts finish."""
    prefix = f"p{next(_ids)}"
    users = [creator(prefix, i, "R") for i in range(3)]
    held = f"{prefix}-u1"
    assert store.claim("X", [held], 0.6, fence="X#1#x") == {held}
    stop = threading.Event()

    def holder_renews():  # a live holder renews its lease, then finishes
        while not stop.is_set():
            store.renew("X#1#x", 0.6)
            time.sleep(0.1)
        store.release_claims("X", fence="X#1#x")

    renewer = threading.Thread(target=holder_renews, daemon=True)
    renewer.start()
    hooks, reports, errors = {}, {}, {}

    def attempt(n):
        hooks[n] = FakeInsiderHook(per_batch=1)
        try:
            reports[n] = send_users(
                users, state=store, hook=hooks[n], run_id=f"R-{prefix}", fence=f"R-{prefix}#{n}#{n}"
            )
        except Exception as exc:
            errors[n] = exc

    threads = [threading.Thread(target=attempt, args=(n,), daemon=True) for n in (1, 2)]
    for t in threads:
        t.start()
    _after(1.0, stop.set).join()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    got = Counter(hooks[1].sent_events() + hooks[2].sent_events())
    assert max(got.values()) == 1 and len(got) == 6
    totals = run_send_totals(store, f"R-{prefix}", TransformStats())
    assert (totals.users_sent, totals.events_sent) == (3, 6)


def test_a_creator_erased_while_a_run_waits_for_it_is_not_sent_after_the_erase(store, fast_leases):
    """The erase step holds a creator's claim (the skip list already names them) while a run wants to send
    them: the run waits, then finds the creator offboarded and does not send them."""
    from creator_sync.store.offboarding import OffboardingState

    prefix = f"p{next(_ids)}"
    users = [creator(prefix, i, "R") for i in range(2)]
    gone = f"{prefix}-u0"
    OffboardingState(store).mark_offboarded(gone, "test")
    owner = "erase:anonymize:off-1"
    assert store.claim(owner, [gone], 600) == {gone}
    _after(0.5, lambda: store.release_claims(owner))
    hook = FakeInsiderHook(per_batch=1)
    report = send_users(users, state=store, hook=hook, run_id=f"R-{prefix}")
    assert {u["identifiers"]["uuid"] for u in hook.sent_users()} == {f"{prefix}-u1"}
    assert report.waited_for_other_runs == 1 and report.offboarded == 1


def test_the_attributes_of_the_run_that_waited_land_last_and_the_next_run_corrects_them(store, fast_leases):
    """Which run's attributes land last is not by snapshot age: the run that waited for the creator sends
    last, here the one with the OLDER snapshot (a backfill beside the scheduled run). The next run with the
    newest snapshot sends them again (its hash differs from the last acknowledged one)."""
    prefix = f"p{next(_ids)}"
    newer, older = creator(prefix, 0, "new"), creator(prefix, 0, "old")
    landed, lock = [], threading.Lock()
    first = SlowHook([0.5], landed, lock, per_batch=1)
    started = threading.Thread(
        target=send_users, args=([newer],), kwargs={"state": store, "hook": first, "run_id": "new"}
    )
    started.start()
    while not store.claim_holders([f"{prefix}-u0"]):
        time.sleep(0.01)
    report = send_users([older], state=store, hook=SlowHook([], landed, lock), run_id="old")
    started.join(timeout=30)
    assert report.waited_for_other_runs == 1
    assert [attrs["name"] for _, attrs in landed] == ["C0 as of new", "C0 as of old"]  # older lands last
    again = FakeInsiderHook()
    send_users([{**newer, "events": []}], state=store, hook=again, run_id="next")
    assert [u["attributes"]["name"] for u in again.sent_users()] == ["C0 as of new"]


def test_two_runs_waiting_for_the_two_users_of_a_dead_holders_lost_batch_both_finish(store, monkeypatch):
    """D dies with an unanswered batch of u0 and u1. A waits for u0, B for u1; once D's lease passes each
    takes over its own user and must hold the batch's other user too to settle the batch (the other run may
    hold it then). Both must finish, the batch settled once, every event once."""
    from tests.exactly_once.harness import Dying, Killed

    _fast_takeover(monkeypatch, wait_s=6)
    prefix = f"p{next(_ids)}"
    d_users = [creator(prefix, i, "D") for i in range(2)]
    dying = Dying(store)
    dead = DiesInFlight(dying, True, per_batch=2)
    with pytest.raises(Killed):
        send_users(d_users, state=dying, hook=dead, run_id=f"D-{prefix}")
    streams = {"A": [creator(prefix, 0, "A")], "B": [creator(prefix, 1, "B")]}
    landed, lock, hooks = [], threading.Lock(), {}
    for run in streams:
        hooks[run] = SlowHook([], landed, lock, per_batch=1)
        hooks[run].stored_by_others = dead.sent_users()
    _, errors = start_together(
        {
            run: functools.partial(
                send_users, streams[run], state=store, hook=hooks[run], run_id=f"{run}-{prefix}"
            )
            for run in streams
        }
    )
    assert not errors, errors
    got = Counter(dead.sent_events() + hooks["A"].sent_events() + hooks["B"].sent_events())
    assert max(got.values()) == 1 and _norm(got) == expected({"D": d_users, **streams})


@pytest.mark.parametrize("guard", [True, False], ids=["let-go", "guard-off"])
def test_a_user_whose_lost_batch_cannot_be_settled_yet_is_let_go_while_the_run_waits(
    store, monkeypatch, guard
):
    """D died with an unanswered batch of u0 and u1; B holds u1. A takes u0 over but cannot settle the batch
    (it would need u1 too): A puts u0 aside and lets it go at once, so that B - which needs u0 to settle the
    same batch - can take it. Held through A's wait (the guard off), each of two such runs holds what the
    other needs, pass after pass, until CREATOR_SYNC_CLAIM_WAIT_S (seen: ClaimsHeldElsewhere naming the
    run's own id as the holder)."""
    from creator_sync.pipeline.settle import SETTLE_ENV
    from creator_sync.store.claims import Claims
    from tests.exactly_once.harness import Dying, Killed

    if not guard:
        monkeypatch.setattr(Claims, "release_keys", lambda self, fence, keys: None)
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", "0.3")
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "30")
    monkeypatch.setenv(SETTLE_ENV, "0.05")
    prefix = f"p{next(_ids)}"
    u0, u1 = f"{prefix}-u0", f"{prefix}-u1"
    dying = Dying(store)
    with pytest.raises(Killed):
        send_users([creator(prefix, i, "D") for i in range(2)], state=dying,
                   hook=DiesInFlight(dying, False, per_batch=2), run_id=f"D-{prefix}")  # fmt: skip
    time.sleep(0.4)  # D's lease has passed
    assert store.claim(f"B-{prefix}", [u1], 600, fence="B#1#x") == {u1}
    seen = []

    def waiting(_seconds):  # A waits: who holds u0 now? then B finishes and lets u1 go
        seen.append(store.claim_holders([u0]).get(u0, (None,))[0])
        store.release_claims(f"B-{prefix}", fence="B#1#x")

    hook = FakeInsiderHook(per_batch=1)
    send_users([creator(prefix, 0, "A")], state=store, hook=hook, run_id=f"A-{prefix}", sleep=waiting)
    assert seen[0] == (None if guard else f"A-{prefix}")
