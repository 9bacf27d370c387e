"""StateStore.claim, one statement per part: a key is taken when it is free, already the attempt's own, or
held under a lease that has passed; a key another attempt holds under a live lease is refused. On SQLite and
on PostgreSQL (the statement's ON CONFLICT ... WHERE reads the holder's lease row through a subquery)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from creator_sync.store import StateStore
from creator_sync.store.schema import send_claims

from .stores import dialect_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    with dialect_store(request.param, tmp_path, "cs_claims", "the claim on PostgreSQL") as s:
        yield s


def test_another_live_attempt_keeps_its_claims(store):
    assert store.claim("r1", ["u1", "u2"], 600, fence="r1#1#a") == {"u1", "u2"}
    assert store.claim("r1", ["u1", "u3"], 600, fence="r1#2#b") == {"u3"}  # same run, other attempt
    assert store.claim("r2", ["u2", "u3", "u4"], 600) == {"u4"}  # another run
    holders = store.claim_holders(["u1", "u2", "u3", "u4"])
    assert {k: v[1] for k, v in holders.items()} == {
        "u1": "r1#1#a",
        "u2": "r1#1#a",
        "u3": "r1#2#b",
        "u4": "r2",
    }


def test_an_attempt_claims_its_own_keys_again_and_extends_their_lease(store):
    assert store.claim("r1", ["u1"], 1, fence="r1#1#a") == {"u1"}
    first = store.claim_holders(["u1"])["u1"][2]
    assert store.claim("r1", ["u1", "u2"], 600, fence="r1#1#a") == {"u1", "u2"}
    assert store.claim_holders(["u1"])["u1"][2] > first + 500


def test_a_claim_whose_fence_lease_has_passed_is_taken_over(store):
    assert store.claim("r1", ["u1", "u2"], -1, fence="r1#1#a") == {"u1", "u2"}  # its lease has passed
    assert store.claim("r2", ["u1"], 600, fence="r2#1#c") == {"u1"}
    assert store.claim_holders(["u1", "u2"])["u1"][1] == "r2#1#c"
    store.renew("r1#1#a", 600)  # the fence's lease row is renewed: its remaining claim is live again
    assert store.claim("r2", ["u2"], 600, fence="r2#1#c") == set()


def test_a_claim_without_a_lease_row_is_judged_by_its_own_lease(store):
    """A claim 0.1.0 wrote (fence NULL, no send_leases row): live until its own lease_until."""
    now = store.clock()
    with store.write() as conn:
        conn.execute(
            send_claims.insert(),
            [
                {"user_key": "live", "run_id": "r-old", "lease_until": now + 600, "fence": None},
                {"user_key": "dead", "run_id": "r-old", "lease_until": now - 1, "fence": None},
            ],
        )
    assert store.claim("r2", ["live", "dead"], 600) == {"dead"}
    assert store.claim("r-old", ["live"], 600) == {"live"}  # the run id is its fence


def test_the_claim_of_many_keys_spans_parts(store):
    keys = [f"u{i}" for i in range(1_203)]
    assert store.claim("r1", keys[:700], 600, fence="r1#1#a") == set(keys[:700])
    assert store.claim("r2", keys, 600, fence="r2#1#b") == set(keys[700:])
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(send_claims)).scalar_one() == len(keys)
