"""Adversarial review of the one-statement ``Claims.claim``: chosen data and chosen interleavings, on SQLite
and on PostgreSQL (READ COMMITTED, the driver's default).

Interleavings are made deterministic with a hook on the engine's ``after_cursor_execute`` event: the attempt
under test pauses right after a chosen statement of its transaction, a second attempt runs in a thread on its
own connection, and the first continues once the second has finished or is waiting (on PostgreSQL a backend
waiting on a lock is seen in ``pg_stat_activity``; on SQLite the second writer queues on ``BEGIN
IMMEDIATE``). Without the claims lock (``claims.CLAIMS_LOCK_KEY``, ``_serialize`` made a no-op) three
PostgreSQL interleavings break the claim: opposite key orders deadlock, a takeover queued behind a re-claim
reads the old lease, and a fence check passes while a takeover commits; with it they pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from creator_sync.store import StateStore
from creator_sync.store.claims import FencedOut
from creator_sync.store.engine import StoreBase
from creator_sync.store.schema import send_claims, send_leases
from devtools.services import require_postgres


def _sqlite(tmp_path) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield s
    finally:
        s.engine.dispose()


def _postgres() -> Iterator[StateStore]:
    from devtools.celery_stack import scratch_state_store

    require_postgres("the adversarial claim tests on PostgreSQL")
    with scratch_state_store("cs_claims_adv") as s:
        yield s


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    yield from _sqlite(tmp_path) if request.param == "sqlite" else _postgres()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[StateStore]:
    yield from _sqlite(tmp_path)


@pytest.fixture
def pg_store() -> Iterator[StateStore]:
    yield from _postgres()


# --- helpers ------------------------------------------------------------------------------------------------


def _pause_after(store: StateStore, matches: Callable[[str], bool], action: Callable[[], None]) -> None:
    """Run ``action`` once, in the calling thread, right after the first statement ``matches`` accepts that
    this thread executes (inside its open transaction)."""
    owner, fired = threading.get_ident(), []

    @event.listens_for(store.engine, "after_cursor_execute")
    def _hook(conn, cursor, statement, parameters, context, executemany):
        if fired or threading.get_ident() != owner or not matches(statement):
            return
        fired.append(True)
        action()


class _Attempt(threading.Thread):
    """Another attempt's call on its own connection, in a thread; keeps its result or its exception."""

    def __init__(self, call: Callable[[], object]):
        super().__init__(daemon=True)
        self.call, self.result, self.error = call, None, None

    def run(self) -> None:
        try:
            self.result = self.call()
        except Exception as exc:
            self.error = exc


def _waiting_on_lock(store: StateStore) -> bool:
    with store.engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar()
        )


def _until_blocked_or_done(store: StateStore, other: _Attempt, timeout: float = 5.0) -> None:
    """Return once ``other`` has finished or (PostgreSQL) waits on a lock; on SQLite a writer that queues on
    BEGIN IMMEDIATE shows no lock wait, so a short grace period stands in."""
    deadline = time.monotonic() + timeout
    if store.engine.dialect.name == "sqlite":
        other.join(0.3)
        return
    while time.monotonic() < deadline and other.is_alive():
        if _waiting_on_lock(store):
            return
        time.sleep(0.02)


def _holders(store: StateStore, keys) -> dict[str, str]:
    return {k: fence for k, (_run, fence, _lease) in store.claim_holders(keys).items()}


def _is_claim_insert(statement: str) -> bool:
    return statement.lstrip().upper().startswith("INSERT INTO SEND_CLAIMS")


def _is_fence_check(statement: str) -> bool:
    s = statement.lower()
    return "count(" in s and "from send_claims" in s


# --- chosen data --------------------------------------------------------------------------------------------


def test_the_same_key_twice_in_one_chunk_is_claimed_once(store):
    assert store.claim("r1", ["u1", "u1", "u2", "u1"], 600, fence="A") == {"u1", "u2"}
    assert store.claim("r2", ["u1", "u1"], 600, fence="B") == set()  # held live by A
    assert store.claim("r1", ["u2", "u2"], 600, fence="A") == {"u2"}  # its own, twice
    assert _holders(store, ["u1", "u2"]) == {"u1": "A", "u2": "A"}


def test_an_empty_chunk_claims_nothing_and_writes_no_lease(store):
    assert store.claim("r1", [], 600, fence="A") == set()
    assert store.claim("r1", iter(()), 600, fence="A") == set()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(send_leases)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(send_claims)).scalar_one() == 0


def test_a_huge_chunk_over_many_pages_returns_exactly_the_keys_it_holds(store):
    """25,000 keys (25 pages of VALUES): a live holder's keys are interleaved with free, expired and own keys
    across page borders; RETURNING must name exactly the keys held, no more and no fewer."""
    keys = [f"u{i:05d}" for i in range(25_000)]
    live_other = keys[1::3]  # every third key, spread over all pages
    expired = keys[2::3]
    assert store.claim("r0", live_other, 600, fence="LIVE") == set(live_other)
    assert store.claim("r9", expired, -1, fence="DEAD") == set(expired)
    assert store.claim("r1", keys[0:1_000:3], 600, fence="A") == set(keys[0:1_000:3])  # some its own already
    held = store.claim("r1", keys, 600, fence="A")
    assert held == set(keys) - set(live_other)
    holders = _holders(store, keys)
    assert {k for k, f in holders.items() if f == "A"} == held
    assert {k for k, f in holders.items() if f == "LIVE"} == set(live_other)


def test_a_lease_that_ends_exactly_at_the_claim_instant_is_still_live(store, monkeypatch):
    """``lease_until == at``: live (not taken over), as ``live_claim_runs`` (``>=``) and ``wait_for_own_run``
    (``lease >= now``) judge it; one tick later it is taken over. Every comparison reads ``at`` from
    ``_clock`` as a bound value, so the instant is exact on both backends."""
    t = 1_900_000_000.0
    monkeypatch.setattr(StoreBase, "_clock", staticmethod(lambda conn: t))
    monkeypatch.setattr(StoreBase, "clock", lambda self: t)
    assert store.claim("r1", ["u1"], 0.0, fence="A") == {"u1"}  # lease_until == t
    assert store.live_claim_runs() == {"r1"}
    assert store.claim("r2", ["u1"], 600, fence="B") == set()
    t = 1_900_000_000.0 + 1e-3
    assert store.live_claim_runs() == set()
    assert store.claim("r2", ["u1"], 600, fence="B") == {"u1"}


def test_a_claim_whose_fence_row_is_missing_is_judged_by_its_own_lease(store):
    """A fence's lease row gone (retention deletes lease rows and claim rows separately) while its claims
    stay: each claim falls back to its own lease_until (the lease when claimed)."""
    now = store.clock()
    with store.write() as conn:
        conn.execute(
            send_claims.insert(),
            [
                {"user_key": "live", "run_id": "r0", "lease_until": now + 600, "fence": "GONE"},
                {"user_key": "dead", "run_id": "r0", "lease_until": now - 1, "fence": "GONE"},
            ],
        )
    assert store.claim("r2", ["live", "dead"], 600, fence="B") == {"dead"}
    assert store.claim("r0", ["live"], 600, fence="GONE") == {"live"}  # its fence takes it back
    assert _holders(store, ["live", "dead"]) == {"live": "GONE", "dead": "B"}


def test_a_fence_reclaiming_after_its_lease_passed_gets_only_what_nobody_took(store):
    assert store.claim("r1", ["k1", "k2", "k3"], -1, fence="A") == {"k1", "k2", "k3"}  # lease passed
    assert store.claim("r2", ["k1"], 600, fence="B") == {"k1"}
    assert store.claim("r1", ["k1", "k2", "k3", "k4"], 600, fence="A") == {"k2", "k3", "k4"}
    assert _holders(store, ["k1", "k2", "k3", "k4"]) == {"k1": "B", "k2": "A", "k3": "A", "k4": "A"}
    with pytest.raises(FencedOut):  # the guard agrees: A no longer holds k1
        store.renew("A", 600, ["k1", "k2"])


def test_every_key_not_returned_is_held_by_another_fence_under_a_live_lease(store):
    """What the callers (``_Planner._claimed``, ``_Send.hold``) assume of an unreturned key: another fence
    holds it live. Free, expired, own, old-row and live-other keys mixed in one chunk."""
    now = store.clock()
    store.claim("r0", ["live1", "live2"], 600, fence="OTHER")
    store.claim("r0", ["exp1"], -1, fence="OLDFENCE")
    store.claim("r1", ["own1"], 600, fence="A")
    with store.write() as conn:
        conn.execute(
            send_claims.insert(),
            [
                {"user_key": "old_live", "run_id": "r-old", "lease_until": now + 600, "fence": None},
                {"user_key": "old_dead", "run_id": "r-old", "lease_until": now - 1, "fence": None},
            ],
        )
    keys = ["free", "live1", "exp1", "own1", "old_live", "old_dead", "live2"]
    held = store.claim("r1", keys, 600, fence="A")
    at = store.clock()
    for key, (_run, fence, lease) in store.claim_holders(keys).items():
        if key in held:
            assert fence == "A"
        else:
            assert fence != "A" and lease >= at, key
    assert held == {"free", "exp1", "own1", "old_dead"}


def test_the_postgresql_clock_decides_not_the_hosts(pg_store, monkeypatch):
    """A worker whose host clock runs an hour ahead must not see live leases as passed: on PostgreSQL every
    lease comparison reads PostgreSQL's clock."""
    assert pg_store.claim("r1", ["u1"], 60, fence="A") == {"u1"}
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3_600)
    assert pg_store.claim("r2", ["u1"], 60, fence="B") == set()
    assert pg_store.live_claim_runs() == {"r1"}


# --- chosen interleavings -----------------------------------------------------------------------------------


def test_two_attempts_claiming_overlapping_keys_at_once_split_them(store):
    """Two threads, two connections, the same order of keys, released together: every key ends with exactly
    one of them, and each attempt's returned set is what the store says it holds."""
    for round_ in range(3):
        keys = [f"r{round_}-u{i:04d}" for i in range(1_500)]
        go = threading.Barrier(2)

        def claim(fence, part, go=go, round_=round_):
            go.wait()
            return store.claim(f"run-{fence}", part, 600, fence=f"{fence}{round_}")

        a = _Attempt(lambda keys=keys, claim=claim: claim("A", keys[:1_000]))
        b = _Attempt(lambda keys=keys, claim=claim: claim("B", keys[500:]))
        a.start(), b.start()
        a.join(20), b.join(20)
        assert a.error is None and b.error is None, (a.error, b.error)
        assert not a.result & b.result
        assert a.result | b.result == set(keys)
        holders = _holders(store, keys)
        assert {k for k, f in holders.items() if f == f"A{round_}"} == a.result
        assert {k for k, f in holders.items() if f == f"B{round_}"} == b.result


def _opposite_orders(store: StateStore) -> tuple[_Attempt, set[str], Exception | None, list[str]]:
    """Attempt A claims ["a", 999 of its own, "b"] (pages: "a" in the first, "b" in the second); attempt B
    claims ["b", 999 of its own, "a"]. B starts after A's first page: it takes "b" and waits for "a"; then
    A's second page waits for "b"."""
    a_keys = ["a", *(f"fa{i:03d}" for i in range(999)), "b"]
    b_keys = ["b", *(f"fb{i:03d}" for i in range(999)), "a"]
    b = _Attempt(lambda: store.claim("rB", b_keys, 600, fence="B"))

    def start_b() -> None:
        b.start()
        _until_blocked_or_done(store, b)

    _pause_after(store, _is_claim_insert, start_b)
    a_error, a_held = None, set()
    try:
        a_held = store.claim("rA", a_keys, 600, fence="A")
    except Exception as exc:
        a_error = exc
    b.join(20)
    return b, a_held, a_error, sorted({*a_keys, *b_keys})


def test_opposite_key_orders_do_not_deadlock_on_sqlite(sqlite_store):
    b, a_held, a_error, keys = _opposite_orders(sqlite_store)
    assert a_error is None and b.error is None
    assert not a_held & b.result and a_held | b.result == set(keys)


def test_opposite_key_orders_do_not_deadlock_on_postgresql(pg_store):
    b, a_held, a_error, keys = _opposite_orders(pg_store)
    assert a_error is None and b.error is None, (a_error, b.error)
    assert not a_held & b.result and a_held | b.result == set(keys)


def _takeover_behind_a_reclaim(store: StateStore) -> tuple[set[str], _Attempt]:
    """C's lease has passed; C claims its key again (its lease row renewed, the claim row locked). B's claim
    starts while C's transaction is open and waits for C's row lock on "k"."""
    assert store.claim("rC", ["k"], -1, fence="C") == {"k"}
    b = _Attempt(lambda: store.claim("rB", ["k"], 600, fence="B"))

    def start_b() -> None:
        b.start()
        _until_blocked_or_done(store, b)

    _pause_after(store, _is_claim_insert, start_b)
    c_held = store.claim("rC", ["k"], 600, fence="C")
    b.join(20)
    assert b.error is None, b.error
    return c_held, b


def test_a_takeover_queued_behind_a_reclaim_sees_the_renewed_lease_on_sqlite(sqlite_store):
    c_held, b = _takeover_behind_a_reclaim(sqlite_store)
    assert c_held == {"k"}
    assert b.result == set()
    assert _holders(sqlite_store, ["k"]) == {"k": "C"}


def test_a_takeover_queued_behind_a_reclaim_sees_the_renewed_lease_on_postgresql(pg_store):
    c_held, b = _takeover_behind_a_reclaim(pg_store)
    assert c_held == {"k"}
    assert b.result == set(), "B took over a key C had just re-claimed under a live lease"
    assert _holders(pg_store, ["k"]) == {"k": "C"}


def _guard_racing_a_takeover(store: StateStore, guard: str) -> tuple[bool, _Attempt]:
    """A holds "k", its lease has passed, nobody took it over yet. A renews (or marks a batch in flight) for
    "k": right after its fence check reads send_claims, B claims "k". Serializable outcomes: A is fenced out
    (B first) or B is refused (A first); never both A passing its guard and B holding "k"."""
    assert store.claim("rA", ["k"], -1, fence="A") == {"k"}
    b = _Attempt(lambda: store.claim("rB", ["k"], 600, fence="B"))

    def start_b() -> None:
        b.start()
        _until_blocked_or_done(store, b, timeout=2.0)

    _pause_after(store, _is_fence_check, start_b)
    passed = True
    try:
        if guard == "renew":
            store.renew("A", 600, ["k"])
        else:
            store.mark_in_flight("rA", "rA:batch", {"users": []}, fence="A", lease_s=600, user_keys=["k"])
    except FencedOut:
        passed = False
    b.join(20)
    assert b.error is None, b.error
    return passed, b


@pytest.mark.parametrize("guard", ["renew", "mark_in_flight"])
def test_a_guard_racing_a_takeover_is_serialized_on_sqlite(sqlite_store, guard):
    passed, b = _guard_racing_a_takeover(sqlite_store, guard)
    assert not (passed and "k" in b.result)
    assert passed and b.result == set()  # BEGIN IMMEDIATE: B queued behind A's renewal


@pytest.mark.parametrize("guard", ["renew", "mark_in_flight"])
def test_a_guard_racing_a_takeover_is_serialized_on_postgresql(pg_store, guard):
    passed, b = _guard_racing_a_takeover(pg_store, guard)
    assert not (passed and "k" in b.result), "A passed its fence check and B took the key over: both send"
