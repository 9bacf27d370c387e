"""Adversarial review of the last-payout clearing (creator_sync.pipeline.income.cleared, clears.jsonl,
creator_sync.pipeline.clear): runs that overlap (a backfill's runs run beside the scheduled ones) send their
upserts and clears in any order, and Insider applies requests in the order they arrive (a Delete User
Attribute after an upsert removes what the upsert set). A run whose transform found the last payout gone must
not delete a last payout a newer run has sent since: its clear pass re-reads the stored totals and deletes
the last_payout_* attributes only of creators whose totals still say `payout_gone`; when the totals got a
counted payout back while the delete was on its way, the creator's acknowledged attribute hash is dropped,
so the next run that writes the creator sends the last payout again (instead of skipping it as unchanged).
The controls: with each guard off Insider ends without the counted last payout."""

from __future__ import annotations

import pytest

from creator_sync.pipeline import clear as clear_mod
from creator_sync.pipeline.clear import clear_file
from creator_sync.pipeline.send import send_file
from creator_sync.store import StateStore

from .factories import FakeInsiderHook
from .test_income_attributes import fetch, paid, transform

P1, P2 = "2024-04-20T00:00:00Z", "2024-04-28T00:00:00Z"


class ProfileInsider(FakeInsiderHook):
    """A fake Insider that keeps each user's custom attributes: an upsert sets what it sends, a Delete User
    Attribute removes what it names, in the order the requests arrive."""

    def __init__(self):
        super().__init__(per_batch=50)
        self.custom: dict[str, dict] = {}

    def upsert_batch(self, batch, **kwargs):
        result = super().upsert_batch(batch, **kwargs)
        for user in batch.users:
            held = self.custom.setdefault(user["identifiers"]["uuid"], {})
            held.update((user.get("attributes") or {}).get("custom") or {})
        return result

    def delete_attributes(self, users):
        for user in users:
            for name in user["custom"]["whole"]:
                self.custom.get(user["identifiers"]["uuid"], {}).pop(name, None)
        return {"data": {"successful": {"count": len(users)}, "fail": {}}}

    def last_payout(self, uuid: str = "u1") -> str | None:
        return self.custom.get(uuid, {}).get("last_payout_at")


@pytest.fixture
def state(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _transform(tmp_path, name, state, payouts):
    transform(tmp_path, name, fetch(tmp_path / f"in-{name}", [], payouts), state)
    return tmp_path / name


def _send(state, insider, out, run_id):
    send_file(out / "users.jsonl", state=state, hook=insider, run_id=run_id)


def _clear(state, insider, out, run_id):
    return clear_file(out / "clears.jsonl", hook=insider, state=state, run_id=run_id)


def _stale_clear_after_a_newer_upsert(tmp_path, state) -> ProfileInsider:
    """Run 0 sends p1; run A (a backfill) reads p1 FAILED; run B reads p2 PAID; A's upsert, then B's, then
    A's clear; then run C, which reads nothing new. Returns the fake Insider."""
    insider = ProfileInsider()
    zero = _transform(tmp_path, "r0", state, [paid("p1", P1, 70)])
    _send(state, insider, zero, "r0")
    assert insider.last_payout() == P1
    a = _transform(tmp_path, "a", state, [paid("p1", P1, 70, status="FAILED")])
    b = _transform(tmp_path, "b", state, [paid("p2", P2, 9)])
    _send(state, insider, a, "a")
    _send(state, insider, b, "b")
    assert insider.last_payout() == P2
    _clear(state, insider, a, "a")
    c = _transform(tmp_path, "c", state, [])
    _send(state, insider, c, "c")
    _clear(state, insider, c, "c")
    return insider


def test_a_stale_clear_does_not_delete_a_newer_counted_last_payout(tmp_path, state):
    assert _stale_clear_after_a_newer_upsert(tmp_path, state).last_payout() == P2


def test_control_without_the_recheck_the_newer_last_payout_stays_deleted(tmp_path, state, monkeypatch):
    monkeypatch.setattr(clear_mod, "still_gone", lambda state, uuids: set(uuids))  # the guard off
    assert _stale_clear_after_a_newer_upsert(tmp_path, state).last_payout() is None


class LateDelete(ProfileInsider):
    """A Delete User Attribute whose request is on its way while `meanwhile` runs (another run's transform
    and upsert): it lands after them."""

    def __init__(self, meanwhile):
        super().__init__()
        self.meanwhile = meanwhile

    def delete_attributes(self, users):
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile:
            meanwhile(self)
        return super().delete_attributes(users)


def _newer_payout_while_the_delete_is_on_its_way(tmp_path, state) -> ProfileInsider:
    """Run 0 sends p1; run A reads p1 FAILED and sends; while A's delete is on its way run B reads p2 PAID
    and sends it; the delete lands; run C reads nothing new. Returns the fake Insider."""

    def run_b(insider):
        _send(state, insider, _transform(tmp_path, "b", state, [paid("p2", P2, 9)]), "b")
        assert insider.last_payout() == P2

    insider = LateDelete(run_b)
    _send(state, insider, _transform(tmp_path, "r0", state, [paid("p1", P1, 70)]), "r0")
    a = _transform(tmp_path, "a", state, [paid("p1", P1, 70, status="FAILED")])
    _send(state, insider, a, "a")
    _clear(state, insider, a, "a")
    assert insider.last_payout() is None  # the delete landed after B's upsert
    c = _transform(tmp_path, "c", state, [])
    _send(state, insider, c, "c")
    _clear(state, insider, c, "c")
    return insider


def test_a_delete_that_lands_after_a_newer_upsert_is_repaired_by_the_next_run(tmp_path, state):
    assert _newer_payout_while_the_delete_is_on_its_way(tmp_path, state).last_payout() == P2


def test_control_without_forgetting_the_hash_the_next_run_skips_the_creator(tmp_path, state, monkeypatch):
    monkeypatch.setattr(clear_mod, "_forget_if_back", lambda state, users: None)  # the guard off
    assert _newer_payout_while_the_delete_is_on_its_way(tmp_path, state).last_payout() is None
