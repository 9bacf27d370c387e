"""Adversarial data for the one-statement claim and the key look-ups (``engine.key_values``: PostgreSQL unnest
of one array parameter, SQLite json_each of one JSON text): keys of any text, duplicates, chunk edges, and a
model of who holds what checked against every claim of a random sequence, on both backends.

Found here: on SQLite, json_each ends a string at an embedded NUL, so a claim of "a\\x00b" claimed the key
"a" (another user's) and reported "a" as held; key_values refuses such keys on both backends (PostgreSQL
text cannot hold NUL either), and validation dead-letters a uuid with one (INVALID_UUID). And a key longer
than the user_key columns (255) failed the claim of its whole batch on PostgreSQL (SQLite took it):
validation dead-letters such a uuid too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.validate import USER_KEY_MAX
from creator_sync.store import StateStore, claims
from creator_sync.store.engine import KEY_CHUNK, StoreBase, key_values
from creator_sync.store.schema import send_claims

from .stores import dialect_store

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# any text a user key could be (uuid, email, phone), NUL and lone surrogates aside (neither database stores
# them; NUL is refused, see below)
key_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    with dialect_store(request.param, tmp_path, "cs_claims_keys", "the claim key tests on PostgreSQL") as s:
        yield s


def _ns() -> str:
    return uuid.uuid4().hex[:8] + ":"


@SETTINGS
@given(keys=st.lists(key_text, max_size=12), long=st.booleans())
def test_any_text_key_is_claimed_held_and_looked_up_as_itself(store, keys, long):
    ns = _ns()
    keys = [(ns + k + ("ü'\"\\" * 70 if long and i == 0 else ""))[:USER_KEY_MAX] for i, k in enumerate(keys)]
    fence = ns + "A"
    assert store.claim("r", keys, 600, fence=fence) == set(keys)
    assert {k: h[1] for k, h in store.claim_holders(keys).items()} == dict.fromkeys(keys, fence)
    assert store.claim("r2", keys, 600, fence=ns + "B") == set()  # held live by A, every one
    assert store.acknowledged_by(keys) == {}
    assert store.attribute_hashes(keys) == {}


@pytest.mark.parametrize("key", ["a\x00b", "\x00", "a\x00"])
def test_a_key_with_a_nul_is_refused_and_claims_nothing_else(store, key):
    """SQLite's json_each ended the string at the NUL: the claim of "a\\x00b" took "a" (another user)."""
    assert store.claim("r0", ["a"], -1, fence="OTHER") == {"a"}  # a's holder's lease has passed
    with pytest.raises(ValueError, match="NUL"):
        store.claim("r1", [key, "z"], 600, fence="A")
    assert {k: h[1] for k, h in store.claim_holders(["a", "z"]).items()} == {"a": "OTHER"}
    with pytest.raises(ValueError, match="NUL"):
        store.attribute_hashes([key])


def test_key_values_refuses_a_nul_on_both_dialects():
    for dialect in ("sqlite", "postgresql"):
        with pytest.raises(ValueError, match="NUL"):
            key_values(dialect, ["ok", "a\x00b"])


def test_a_uuid_no_state_store_can_key_is_dead_lettered_as_invalid():
    """A uuid with a NUL, or longer than the user_key columns (PostgreSQL failed the claim of the whole batch
    with "value too long for type character varying(255)"; SQLite took it), is rejected with its reason."""
    from creator_sync.pipeline.validate import INVALID_UUID, identifier_reasons

    assert send_claims.c.user_key.type.length == USER_KEY_MAX
    uuids = ["ok", "a\x00b", "x" * USER_KEY_MAX, "x" * (USER_KEY_MAX + 1)]
    frame = pd.DataFrame({"uuid": uuids, "email": ["a@example.com"] * 4, "phone_number": [None] * 4})
    reasons = list(identifier_reasons(frame, require_contact=False).fillna(""))
    assert reasons == ["", INVALID_UUID, "", INVALID_UUID]


def test_the_longest_usable_key_is_claimed_on_both_backends(store):
    key = "é" * USER_KEY_MAX
    assert store.claim("r", [key], 600, fence="A") == {key}
    assert store.attribute_hashes([key]) == {}


@pytest.mark.parametrize("n", [KEY_CHUNK - 1, KEY_CHUNK, KEY_CHUNK + 1, 2 * KEY_CHUNK + 1])
def test_the_chunk_edge_loses_and_adds_no_key(store, n):
    """Keys across the KEY_CHUNK edge, each listed twice (the duplicate of the last key of one chunk would be
    the first of the next without the dedup), the keys around the edge held live by another fence."""
    keys = [f"u{i:06d}" for i in range(n)]
    edge = keys[KEY_CHUNK - 2 : KEY_CHUNK + 2]
    assert store.claim("r0", edge, 600, fence="LIVE") == set(edge)
    held = store.claim("r1", keys + keys[::-1], 600, fence="A")
    assert held == set(keys) - set(edge)
    holders = {k: h[1] for k, h in store.claim_holders(keys).items()}
    assert holders == {k: "LIVE" if k in edge else "A" for k in keys}


# -- a model of the claims, checked against random sequences -------------------------------------------------
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("claim"),
            st.sampled_from("ABC"),
            st.lists(st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "k'6", "k\u00e97"]), max_size=8),
            st.sampled_from([600, 0, -1]),  # live, ending exactly at the claim instant (live), passed
        ),
        st.tuples(st.just("release"), st.sampled_from("ABC"), st.just([]), st.just(0)),
    ),
    max_size=14,
)


@SETTINGS
@given(sequence=ops, chunk=st.integers(1, 4))
def test_every_claim_agrees_with_the_model(store, monkeypatch, sequence, chunk):
    """A key is held by the fence that last took it; a fence's lease is that of its latest claim (one lease
    row per fence). A claim takes a key that is free, its own, or held under a lease that has passed; the
    claim's statement runs per `chunk` keys (KEY_CHUNK made small, so chunk edges fall everywhere)."""
    t = 1_000_000.0
    monkeypatch.setattr(StoreBase, "_clock", staticmethod(lambda conn: t))
    monkeypatch.setattr(StoreBase, "clock", lambda self: t)
    monkeypatch.setattr(claims, "KEY_CHUNK", chunk)
    ns = _ns()
    holder: dict[str, str] = {}
    live: dict[str, bool] = {}
    for op, fence, keys, lease in sequence:
        fence = ns + fence
        if op == "release":
            store.release_claims("r", fence=fence)
            holder = {k: f for k, f in holder.items() if f != fence}
            live.pop(fence, None)
            continue
        keys = [ns + k for k in keys]
        want = {k for k in keys if holder.get(k) in (None, fence) or not live.get(holder[k], False)}
        if keys:  # a claim of no key writes no lease
            live[fence] = lease >= 0
        holder.update(dict.fromkeys(want, fence))
        assert store.claim("r", keys, lease, fence=fence) == want, (op, fence, keys, lease)
    everything = [ns + k for k in ["k0", "k1", "k2", "k3", "k4", "k5", "k'6", "k\u00e97"]]
    assert {k: h[1] for k, h in store.claim_holders(everything).items()} == holder
