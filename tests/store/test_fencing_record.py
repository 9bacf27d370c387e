"""The record of an answer under a fence (``Ledger.record_batch(fence=...)``) when the attempt's lease passed
and another attempt took its users over, before the record and while it is being written, on SQLite and on
PostgreSQL. The old holder must write nothing once fenced out (its marker stays for the new holder to
settle); when its record wins the race, the new holder, reading the markers and then the ledger after its
claim (creator_sync.pipeline.send), must see the record or the marker, never neither."""

from __future__ import annotations

import pytest

from creator_sync.store.claims import FencedOut

from .test_claims_adversarial import _Attempt, _is_fence_check, _pause_after, _until_blocked_or_done

EVENT = "e" * 64  # an event key (sha256 hex)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from .test_claims_adversarial import _postgres, _sqlite

    yield from _sqlite(tmp_path) if request.param == "sqlite" else _postgres()


def _sent_by_a(store) -> None:
    """A holds "k" and sent a batch for it (its marker is written); then its lease passes."""
    assert store.claim("rA", ["k"], 600, fence="A") == {"k"}
    store.mark_in_flight("rA", "rA:b1", {"users": []}, fence="A", lease_s=600, user_keys=["k"])
    assert store.claim("rA", ["k"], -1, fence="A") == {"k"}  # A's lease row: passed


def _record_a(store) -> None:
    store.record_batch(
        run_id="rA",
        batch_key="rA:b1",
        events=[(EVENT, "k")],
        hashes=[("k", "h" * 64)],
        failures=[],
        outcomes=[("k", "sent", 1)],
        fence="A",
    )


def test_a_record_after_the_takeover_is_fenced_out_and_writes_nothing(store):
    _sent_by_a(store)
    assert store.claim("rB", ["k"], 600, fence="B") == {"k"}
    with pytest.raises(FencedOut):
        _record_a(store)
    assert store.acknowledged_by([EVENT]) == {}
    assert store.attribute_hashes(["k"]) == {}
    assert [m.batch_key for m in store.in_flight_markers()] == ["rA:b1"]  # for B to settle


def test_a_takeover_during_the_record_sees_the_record_or_the_marker(store):
    """A's record pauses right after its fence check; B claims "k" meanwhile and, once its claim returns,
    reads the markers and then the ledger (the sender's order). Either A is fenced out, or B sees A's marker
    or A's acknowledged event: B never resends blind."""
    _sent_by_a(store)
    seen: dict = {}

    def b_claims() -> set[str]:
        held = store.claim("rB", ["k"], 600, fence="B")
        seen["markers"] = [m.batch_key for m in store.in_flight_markers()]
        seen["acked"] = store.acknowledged_by([EVENT])
        return held

    b = _Attempt(b_claims)

    def start_b() -> None:
        b.start()
        _until_blocked_or_done(store, b, timeout=2.0)

    _pause_after(store, _is_fence_check, start_b)
    try:
        _record_a(store)
        recorded = True
    except FencedOut:
        recorded = False
    b.join(20)
    assert b.error is None, b.error
    if recorded and "k" in b.result:
        assert "rA:b1" in seen["markers"] or seen["acked"] == {EVENT: "rA"}, seen
    if not recorded:
        assert store.acknowledged_by([EVENT]) == {}
