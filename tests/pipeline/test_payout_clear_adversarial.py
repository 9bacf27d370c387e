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

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline import clear as clear_mod
from creator_sync.pipeline import clearing
from creator_sync.pipeline.clear import clear_file
from creator_sync.pipeline.income import attribute_values, cleared, window_us
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.send import send_file
from creator_sync.store import StateStore
from creator_sync.store.income import PAYOUT, IncomeItem
from tests.store.stores import sqlite_stores

from .factories import FakeInsiderHook
from .test_clearing import DOWN
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
    _quiet_run(tmp_path, state, insider)
    return insider


def _quiet_run(tmp_path, state, insider) -> None:
    """Run C: reads nothing new, sends what the store says is owed and clears what is still gone."""
    c = _transform(tmp_path, "c", state, [])
    _send(state, insider, c, "c")
    _clear(state, insider, c, "c")


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
    _quiet_run(tmp_path, state, insider)
    return insider


def test_a_delete_that_lands_after_a_newer_upsert_is_repaired_by_the_next_run(tmp_path, state):
    assert _newer_payout_while_the_delete_is_on_its_way(tmp_path, state).last_payout() == P2


def test_control_without_forgetting_the_hash_the_next_run_skips_the_creator(tmp_path, state, monkeypatch):
    monkeypatch.setattr(clear_mod, "_forget_if_back", lambda state, users: None)  # the guard off
    assert _newer_payout_while_the_delete_is_on_its_way(tmp_path, state).last_payout() is None


# The property: two runs overlap (each keeps its items and writes its files, upserts, clears, in that order;
# hypothesis interleaves the two and may kill a run after any step), a clear request may be refused or
# processed with its answer lost, payouts share a second or change currency; then one more run that reads
# nothing new. Insider then shows exactly the stored newest counted payout, or none. No transform (the
# files are the income attributes and clears of the totals, as the transform writes them): 40 examples,
# about 10 s.
READS = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2"]),
        st.sampled_from(["PAID", "FAILED", "FAILED", "PENDING"]),
        st.sampled_from(["USD", "EUR"]),
        st.sampled_from([0, 0, 1]),  # seconds after the base: most payouts share a second
    ),
    min_size=1,
    max_size=2,
)
STEPS = ("totals", "upsert", "clear")


class Vendor(ProfileInsider):
    """Clear requests answered by `outcomes` in turn: ok, refused (nothing deleted), lost (deleted, the
    answer lost)."""

    def __init__(self, outcomes):
        super().__init__()
        self.outcomes = list(outcomes)

    def delete_attributes(self, users):
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "refused":
            raise DOWN
        answer = super().delete_attributes(users)
        if outcome == "lost":
            raise DOWN
        return answer


def _item(pid: str, status: str, currency: str, second: int) -> IncomeItem:
    at = 1_714_000_000_000_000 + second * 1_000_000
    return IncomeItem("u1", PAYOUT, pid, "a1", 1_000_000, currency, at, status, status == "PAID")


def _step(state, insider, out, run: str, step: str, reads) -> None:
    if step == "totals":
        out.mkdir(parents=True, exist_ok=True)
        items = [_item(*r) for r in reads]
        totals = state.income_totals(items, ["u1"], as_of_us=1_715_000_000_000_000, window_us=window_us())
        custom = attribute_values(totals.get("u1", {}))
        user = {"identifiers": {"uuid": "u1"}, "attributes": {"custom": custom}}
        (out / "users.jsonl").write_text(json.dumps(user) + "\n")
        lines = [clearing.clear_line(u, names) for u, names in cleared(totals, MAPPING).items()]
        (out / "clears.jsonl").write_text("".join(lines))
    elif step == "upsert":
        _send(state, insider, out, run)
    else:
        _clear(state, insider, out, run)


MAPPING = load_mapping()


@st.composite
def schedules(draw):
    """The steps of runs a and b interleaved, each cut after a random step (a kill), then run f whole."""
    cuts = {r: draw(st.integers(1, 3)) for r in ("a", "b")}
    left = {r: list(STEPS[: cuts[r]]) for r in cuts}
    order = []
    while any(left.values()):
        run = draw(st.sampled_from(sorted(r for r in left if left[r])))
        order.append((run, left[run].pop(0)))
    return [("z", s) for s in STEPS] + order + [("f", s) for s in STEPS]


def _expected(state) -> dict:
    totals = state.stored_income_totals(["u1"]).get("u1", {})
    return {k: v for k, v in attribute_values(totals).items() if k.startswith("last_payout")}


def _play(state, tmp_path, schedule, reads, outcomes) -> tuple[dict, dict]:
    insider = Vendor(outcomes)
    for run, step in schedule:
        if run == "f":
            insider.outcomes = []  # the one more run's clear lands (a refused one is the next run's)
        _step(state, insider, tmp_path / run, run, step, reads.get(run, []))
    shown = {k: v for k, v in insider.custom.get("u1", {}).items() if k.startswith("last_payout")}
    return shown, _expected(state)


@pytest.fixture
def stores(tmp_path):
    return sqlite_stores(tmp_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=schedules(),
    zero=st.one_of(st.just([("p1", "PAID", "USD", 0)]), READS),  # mostly a last payout at Insider first
    a=READS,
    b=READS,
    outcomes=st.lists(st.sampled_from(["ok", "refused", "lost"]), max_size=2),
)
def test_after_overlapping_runs_and_one_more_insider_shows_the_stored_last_payout(
    stores, tmp_path_factory, schedule, zero, a, b, outcomes
):
    out = tmp_path_factory.mktemp("runs")
    shown, expected = _play(stores(), out, schedule, {"z": zero, "a": a, "b": b}, outcomes)
    assert shown == expected


STALE = {"z": [("p1", "PAID", "USD", 0)], "a": [("p1", "FAILED", "USD", 0)], "b": [("p2", "PAID", "EUR", 0)]}
STALE_ORDER = [("z", s) for s in STEPS] + [
    ("a", "totals"), ("b", "totals"), ("a", "upsert"), ("b", "upsert"), ("a", "clear"), ("b", "clear"),
] + [("f", s) for s in STEPS]  # fmt: skip


def test_control_the_property_fails_with_the_recheck_off(stores, tmp_path, monkeypatch):
    """The property's schedule of the stale clear (p2 shares p1's second, in another currency)."""
    assert _play(stores(), tmp_path / "on", STALE_ORDER, STALE, [])[0]["last_payout_currency"] == "EUR"
    monkeypatch.setattr(clear_mod, "still_gone", lambda state, uuids: set(uuids))  # the guard off
    shown, expected = _play(stores(), tmp_path / "off", STALE_ORDER, STALE, [])
    assert shown == {} and expected["last_payout_currency"] == "EUR"


def _failed_without_amount(tmp_path, state) -> tuple[dict, list, list]:
    """p1 PAID, then read FAILED without an amount (a dead letter): the second run's custom attributes,
    its dead letters and its clears."""
    _transform(tmp_path, "r0", state, [paid("p1", P1, 70)])
    failed = paid("p1", P1, None, status="FAILED")
    users, malformed = transform(tmp_path, "a", fetch(tmp_path / "in-a", [], [failed]), state)
    clears = [json.loads(x) for x in (tmp_path / "a" / "clears.jsonl").read_text().splitlines()]
    return users["u1"]["attributes"]["custom"], malformed, clears


def test_a_payout_read_failed_without_an_amount_stops_counting(tmp_path, state):
    custom, malformed, clears = _failed_without_amount(tmp_path, state)
    assert [m["payload"]["id"] for m in malformed] == ["p1"]  # still a dead letter
    assert not {k for k in custom if k.startswith("last_payout")}
    assert clears[0]["custom"]["whole"] == ["last_payout_amount", "last_payout_at", "last_payout_currency"]


def test_control_without_uncounting_the_failed_payout_stays_the_last_payout(tmp_path, state, monkeypatch):
    from creator_sync.pipeline import income

    monkeypatch.setattr(income, "uncounting", lambda bad, *rest: bad & False)  # the guard off
    custom, _, clears = _failed_without_amount(tmp_path, state)
    assert custom["last_payout_at"] == P1 and clears == []
