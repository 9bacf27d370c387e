"""Adversarial situations for the exactly-once sender (a reviewer's attempt to break it), each against the
Insider sandbox through a network whose outcomes are chosen. Every situation the sender handles is a
regression test; the one it does not (a creator whose ledger key changes from the email to a uuid, which
the transform never produces: it always sets the uuid) is ``xfail(strict=True)`` with its reason."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from creator_sync.http.errors import AmbiguousOutcomeError, VendorError
from creator_sync.pipeline.replay import finish_replay, prepare_replay, replay_gap
from creator_sync.pipeline.send import ClaimsHeldElsewhere, send_file, send_users
from creator_sync.store import FencedOut, StateStore, schema

from .conftest import LEASE_S
from .harness import (
    Dying,
    Insider,
    Killed,
    Net,
    check_delivery,
    check_ledger,
    content_event,
    duplicates,
    hook,
    user,
)

T = "2026-12-01T10:00:00Z"
T_LATER = "2026-12-01T10:00:05Z"
T_EARLIER = "2026-12-01T09:59:00Z"


def _send(users, state, net, run_id="run-1", attempts=3, **kw):
    net.state = state
    return send_users(users, state=state, hook=hook(net, attempts), run_id=run_id, **kw)


def _raw(insider: Insider, uuids: list[str]) -> dict[str, list[dict]]:
    """The events the sandbox stores per uuid, as stored (any event name, any params)."""
    found = httpx.post(
        f"{insider.sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": uuids}, timeout=60
    ).json()["data"]
    return {u: (stored or {}).get("events", []) for u, stored in found.items()}


def _stats(insider: Insider) -> dict:
    return httpx.get(f"{insider.sandbox.insider_url}/_sandbox/stats", timeout=60).json()


@dataclass
class ProfileNet(Net):
    """A Net that also chooses what happens to Profile API calls: ``profile_plan`` entries are
    "ok", "500", "503", "429", "c_prefix" (key params returned only as c_<name>), "no_params" (rows without
    any param but created_date), "empty" (200 with no rows)."""

    profile_plan: list = field(default_factory=list)
    profile_calls: int = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/profile"):
            return super().handle_request(request)
        self.profile_calls += 1
        outcome = self.profile_plan.pop(0) if self.profile_plan else "ok"
        if outcome in ("500", "503"):
            return httpx.Response(int(outcome), json={"error": "internal error"}, request=request)
        if outcome == "429":
            body = {"error": "rejected: too many requests"}
            return httpx.Response(429, headers={"Retry-After": "1"}, json=body, request=request)
        response = self.inner.handle_request(request)
        response.read()
        if outcome == "ok" or response.status_code != 200:
            return response
        data = response.json()
        events = data.get("events") or {}
        for name, rows in events.items():
            new_rows = []
            for row in rows:
                if outcome == "c_prefix":
                    row = {(k if k == "created_date" else f"c_{k}"): v for k, v in row.items()}
                elif outcome == "no_params":
                    row = {"created_date": row["created_date"]}
                new_rows.append(row)
            events[name] = [] if outcome == "empty" else new_rows
        return httpx.Response(200, json=data, request=request)


# == A. the probe ignores the event's timestamp ============================================================


def test_a_same_content_item_redated_in_a_lost_batch_is_not_mistaken_for_the_old_one(insider, state):
    """Run 0 stores item c1 at T. InsightIQ re-dates c1 (published_at corrected to earlier): run 1 has c1 at
    T_EARLIER (a new ledger key, so the sender means to send it) and its batch is lost on the way. The probe
    looks for content_id c1 in [T_EARLIER - 1 s, now], finds the OLD row at T, and acknowledges the new
    event, which Insider never received."""
    _send([user("u1", [content_event("c1", T)])], state, Net(), run_id="run-0")
    redated = [user("u1", [content_event("c1", T_EARLIER)])]
    _send(redated, state, Net(["vanished"]), run_id="run-1")
    everyone = [user("u1", [content_event("c1", T), content_event("c1", T_EARLIER)])]
    assert check_delivery(insider, state, everyone, rejected=set()) == []


def test_a_the_report_of_the_run_that_lost_the_redated_item_does_not_reconcile(insider, state):
    from creator_sync.pipeline.report import build_summary, run_send_totals
    from creator_sync.pipeline.transform import TransformStats

    _send([user("u1", [content_event("c1", T)])], state, Net(), run_id="run-0")
    _send([user("u1", [content_event("c1", T_EARLIER)])], state, Net(["vanished"]), run_id="run-1")
    everyone = [user("u1", [content_event("c1", T), content_event("c1", T_EARLIER)])]
    problems = check_delivery(insider, state, everyone, rejected=set())
    stats = TransformStats(fetched_creators=1, users_written=1)
    summary = build_summary("run-1", stats, run_send_totals(state, "run-1", stats))
    assert summary.reconciled == (problems == []), (summary.reconciliation_line(), problems)


def test_a_control_without_a_lost_answer_the_redated_item_is_sent(insider, state):
    """The ledger's identity includes the timestamp: with no lost answer the re-dated item is sent (so in
    the lost case above the sender's own rule says it must reach Insider)."""
    _send([user("u1", [content_event("c1", T)])], state, Net(), run_id="run-0")
    _send([user("u1", [content_event("c1", T_EARLIER)])], state, Net(), run_id="run-1")
    everyone = [user("u1", [content_event("c1", T), content_event("c1", T_EARLIER)])]
    assert check_delivery(insider, state, everyone, rejected=set()) == []


# == B. one user twice in one lost batch ===================================================================


def test_b_a_user_listed_twice_in_a_lost_batch_has_both_parts_settled(insider, state):
    """users.jsonl holds u1 twice (two lines, different items) and the batch's answer is lost after Insider
    stored both. settle_users keys its verdicts by user_key, so only the LAST entry's events are probed; the
    first entry is recorded as arrived with the second entry's event keys, and its own item never enters the
    ledger: the next run sends it again."""
    users = [user("u1", [content_event("c1", T)]), user("u1", [content_event("c2", T)])]
    _send(users, state, Net(["lost"]), run_id="run-1")
    _send(users, state, Net(), run_id="run-2")  # a later run / backfill over the same interval
    everyone = [user("u1", [content_event("c1", T), content_event("c2", T)])]
    assert check_delivery(insider, state, everyone, rejected=set()) == []


def test_b_control_a_user_listed_twice_with_answers_is_sent_once(insider, state):
    users = [user("u1", [content_event("c1", T)]), user("u1", [content_event("c2", T)])]
    _send(users, state, Net(), run_id="run-1")
    _send(users, state, Net(), run_id="run-2")
    everyone = [user("u1", [content_event("c1", T), content_event("c2", T)])]
    assert check_delivery(insider, state, everyone, rejected=set()) == []


# == C. an event without key params (unmapped event, no params) ===========================================


def _login(ts: str) -> dict:
    return {"event_name": "app_login", "timestamp": ts, "event_params": {}}


def test_c_an_event_without_key_params_in_a_lost_batch_is_not_found_by_its_name_alone(insider, state):
    """An event name the mapping does not list, carrying no params: nothing identifies it, so a row of that
    name is never taken for it. Run 0 stored a login at T; run 1's earlier login (a new ledger key) is lost
    on the way: it is held as an unsettled lost answer (a dead letter for an operator), neither acknowledged
    as delivered by run 0's row nor sent again blindly."""
    first = {"identifiers": {"uuid": "u1"}, "attributes": {"name": "C"}, "events": [_login(T)]}
    _send([first], state, Net(), run_id="run-0")
    second = {"identifiers": {"uuid": "u1"}, "attributes": {"name": "C"}, "events": [_login(T_EARLIER)]}
    report = _send([second], state, Net(["vanished"]), run_id="run-1")
    stored = Counter(e["timestamp"] for e in _raw(insider, ["u1"])["u1"] if e["event_name"] == "app_login")
    assert stored == Counter({T: 1}), stored
    assert report.rejected == {"unsettled_lost_answer": 1}
    (letter,) = state.dead_letters(reasons=["unsettled_lost_answer"])
    assert letter.payload["events"] == [_login(T_EARLIER)]


# == D. one instant, two spellings of its timestamp =========================================================


def test_d_the_same_instant_spelled_twice_is_not_sent_twice(insider, state):
    """The ledger key hashes the timestamp TEXT: the same item at the same instant written with
    fractional seconds (a replayed payload of an older release, an upstream format change) is a new key and
    is appended again; Insider counts it as a duplicate (same name, instant and params)."""
    _send([user("u1", [content_event("c1", T)])], state, Net(), run_id="run-0")
    _send([user("u1", [content_event("c1", "2026-12-01T10:00:00.000Z")])], state, Net(), run_id="run-1")
    assert _stats(insider)["duplicate_events"] == 0


def test_d_a_lowercase_z_timestamp_in_a_lost_batch_is_probed_over_its_own_time(insider, state):
    """RFC 3339 allows a lowercase "z" (Insider accepts it). settle._epoch only replaces "Z", so the
    timestamp does not parse, the probe window falls back to the last 24 h and misses the event of
    2026-12-01: a processed batch looks missing and is sent again."""
    users = [user("u1", [content_event("c1", "2026-12-01T10:00:00z")])]
    _send(users, state, Net(["lost"]), run_id="run-1")
    assert _stats(insider)["duplicate_events"] == 0


# == S. numbers vs strings in key params ===================================================================


def test_s_a_numeric_and_a_string_content_id_are_one_item_for_the_ledger_and_the_probe(insider, state):
    """The ledger and the Profile API check compare key params by one rule (keys.key_value): content id
    123 and "123" at the same second are one item. Run 0 stores 123; run 1's "123" is already acknowledged
    and is not sent, lost answer or not; nothing is acknowledged that Insider does not hold."""
    _send([user("u1", [content_event(123, T)])], state, Net(), run_id="run-0")
    report = _send([user("u1", [content_event("123", T)])], state, Net(["vanished"]), run_id="run-1")
    assert report.events_already_acknowledged == 1 and report.lost_answers == 0
    assert sum(insider.events(["u1"])["u1"].values()) == 1
    assert check_ledger(insider, state, [user("u1", [content_event(123, T)])]) == []


# == E. a lost answer on the resend after a lost answer ====================================================


@pytest.mark.parametrize(
    "plan", [["lost", "lost"], ["vanished", "lost"], ["lost", "vanished", "lost"], ["vanished"] * 3]
)
def test_e_lost_answers_on_the_resends_after_a_lost_answer(insider, state, plan):
    insider.sandbox.configure("insider", {"reject_uuids": ["u2"]})
    users = [user(f"u{i}", [content_event(f"c{i}", T), content_event(f"d{i}", T)]) for i in (1, 2, 3)]
    _send(users, state, Net(plan))
    assert check_delivery(insider, state, users, rejected={"u2"}) == []
    assert state.in_flight() == []


def test_e_four_lost_answers_leave_a_marker_the_retry_settles(insider, state):
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2, 3)]
    with pytest.raises(AmbiguousOutcomeError):
        _send(users, state, Net(["vanished", "vanished", "vanished", "lost"]), fence="run-1#1#a")
    assert len(state.in_flight()) == 1
    _send(users, state, Net(), fence="run-1#2#b")
    assert check_delivery(insider, state, users, rejected=set()) == []
    assert duplicates(insider, users) == 0 and state.in_flight() == []


# == F. a kill between the settlement record and the resend ================================================


def test_f_kill_between_settlement_and_resend(insider, state):
    """The lost batch is settled (u1, u3 found and recorded, u2 missing: rejected), then the process dies
    just before the resend's marker is written. The retry resumes from the ledger."""
    insider.sandbox.configure("insider", {"reject_uuids": ["u2"]})
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2, 3)]
    store = state._store
    real, calls = store.mark_in_flight, []

    def dying_mark(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            state.dead = True
            raise Killed("killed after the settlement record, before the resend")
        return real(*a, **kw)

    store.mark_in_flight = dying_mark
    with contextlib.suppress(Killed):
        _send(users, state, Net(["lost"]), fence="run-1#1#a")
    del store.mark_in_flight
    retry = Dying(store)
    _send(users, retry, Net(), fence="run-1#2#b")
    assert check_delivery(insider, store, users, rejected={"u2"}) == []
    assert [dl.user_key for dl in store.dead_letters()] == ["u2"]


@pytest.mark.parametrize("b_dies", ["kill_before", "kill_after"])
def test_f_kill_inside_send_again_of_another_runs_marker(insider, state, b_dies):
    """Run A dies before its request went out (its marker stays); run B settles A's marker (all missing),
    re-sends A's users from the marker's copy and dies before / after that resend was processed (A's marker
    is kept, B's resend marker is left too); run C settles both markers."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    store = state._store
    with contextlib.suppress(Killed):
        _send(users, state, Net(["kill_before"]), run_id="run-A")
    time.sleep(LEASE_S + 0.2)
    b = Dying(store)
    with contextlib.suppress(Killed):
        _send(users, b, Net([b_dies]), run_id="run-B")
    assert b.dead and len(store.in_flight()) == 2
    time.sleep(LEASE_S + 0.2)
    _send(users, Dying(store), Net(), run_id="run-C")
    assert check_delivery(insider, store, users, rejected=set()) == []
    assert store.in_flight() == []


# == G. attribute-only users in a lost batch ===============================================================


def test_g_attribute_only_users_in_a_lost_batch(insider, state):
    users = [
        user("u1", [content_event("c1", T)]),
        {"identifiers": {"uuid": "u2"}, "attributes": {"name": "Only", "surname": "Attrs"}},
        user("u3", [], name="NoEvents"),
    ]
    _send(users, state, Net(["lost", "lost"]))
    assert check_delivery(insider, state, [users[0]], rejected=set()) == []
    stored = httpx.post(
        f"{insider.sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": ["u2", "u3"]}, timeout=60
    ).json()["data"]
    assert stored["u2"]["attributes"]["surname"] == "Attrs"
    assert stored["u3"]["attributes"]["name"] == "NoEvents"
    assert state.attribute_hashes(["u1", "u2", "u3"]).keys() == {"u1", "u2", "u3"}
    assert state.in_flight() == []


def test_g_a_lost_batch_of_attribute_only_users(insider, state):
    users = [{"identifiers": {"uuid": f"u{i}"}, "attributes": {"name": f"N{i}"}} for i in range(3)]
    report = _send(users, state, Net(["lost", "vanished"]))
    assert report.users_sent == 3 and state.in_flight() == []
    assert state.attribute_hashes([f"u{i}" for i in range(3)]).keys() == {"u0", "u1", "u2"}


# == H. identifiers other than uuid ========================================================================


def _email_user(email: str, items: list[str], uuid: str | None = None) -> dict:
    ids = {"email": email, **({"uuid": uuid} if uuid else {})}
    return {
        "identifiers": ids,
        "attributes": {"name": "Mail"},
        "events": [content_event(i, T) for i in items],
    }


def _events_by_email(insider: Insider) -> dict[str, Counter]:
    data = httpx.get(f"{insider.sandbox.insider_url}/_sandbox/users?limit=1000", timeout=60).json()["data"]
    out: dict[str, Counter] = {}
    for u in data:
        email = (u.get("identifiers") or {}).get("email")
        if email:
            out[email] = Counter(
                (e["params"].get("custom") or {}).get("content_id") for e in u.get("events", [])
            )
    return out


@pytest.mark.parametrize("plan", [["lost"], ["vanished"], ["lost", "lost"]])
def test_h_email_only_users_in_a_lost_batch(insider, state, plan):
    users = [_email_user("a@x.io", ["c1", "c2"]), _email_user("b@x.io", ["c3"])]
    _send(users, state, Net(plan), run_id="run-1")
    _send(users, state, Net(), run_id="run-2")
    stored = _events_by_email(insider)
    assert stored["a@x.io"] == Counter({"c1": 1, "c2": 1})
    assert stored["b@x.io"] == Counter({"c3": 1})
    assert state.in_flight() == []


@pytest.mark.xfail(
    strict=True,
    reason=(
        "documented limit: user_key prefers uuid over email, so a creator first keyed by email and "
        "later by uuid gets new ledger keys; Insider unifies by email and stores the item twice (the "
        "transform always sets the uuid)"
    ),
)
def test_h_an_email_only_user_who_later_gets_a_uuid_is_not_sent_twice(insider, state):
    """user_key prefers the uuid: the same creator keyed by email in run 0 and by uuid in run 1 gets new
    ledger keys for the same items; Insider unifies both by the email, so the item is appended twice."""
    _send([_email_user("a@x.io", ["c1"])], state, Net(), run_id="run-0")
    _send([_email_user("a@x.io", ["c1"], uuid="u-a")], state, Net(), run_id="run-1")
    assert _events_by_email(insider)["a@x.io"] == Counter({"c1": 1})


# == I/J/K. what the Profile API answers while probing =====================================================


@pytest.mark.parametrize("profile", [["429", "429"], ["503", "500"], ["500"] * 30])
@pytest.mark.parametrize("upsert", ["lost", "vanished"])
def test_i_a_profile_api_that_refuses_or_fails_while_probing(insider, state, profile, upsert):
    """429s (Retry-After) and 5xx on the probes: retried by the client; if the probes keep failing the
    attempt fails with its marker left, and the retry settles it."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    net = ProfileNet([upsert], profile_plan=list(profile))
    try:
        _send(users, state, net, fence="run-1#1#a")
    except VendorError:
        assert len(state.in_flight()) == 1
    _send(users, state, Net(), fence="run-1#2#b")
    assert check_delivery(insider, state, users, rejected=set()) == []
    assert state.in_flight() == []


@pytest.mark.parametrize("upsert", ["lost", "vanished"])
def test_j_a_profile_api_that_names_the_key_params_with_the_c_prefix(insider, state, upsert):
    users = [user(f"u{i}", [content_event(f"c{i}", T), content_event(f"d{i}", T)]) for i in (1, 2)]
    _send(users, state, ProfileNet([upsert], profile_plan=["c_prefix"] * 20))
    assert check_delivery(insider, state, users, rejected=set()) == []
    assert state.dead_letters() == []


def test_k_a_profile_api_that_returns_rows_without_the_key_params(insider, state):
    """The rows come back without content_id: the events cannot be identified; they are held (never re-sent)
    and dead-lettered as unsettled_lost_answer."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    report = _send(users, state, ProfileNet(["lost"], profile_plan=["no_params"] * 20))
    assert duplicates(insider, users) == 0
    assert sorted(dl.user_key for dl in state.dead_letters()) == ["u1", "u2"]
    assert report.rejected == {"unsettled_lost_answer": 2}
    assert check_ledger(insider, state, users) == []


def test_k_unverifiable_user_with_a_second_missing_event_is_not_dropped(insider, state):
    """u1 already holds c-old (run 0). Run 1 sends u1's c-old-dated sibling c-new and another item c2; the
    batch is lost on the way and the Profile API returns u1's old row without params: c-new is
    unverifiable and c2 missing. The run must neither re-send blindly nor forget c2: after the operator's
    check the dead letter's payload still carries it."""
    _send([user("u1", [content_event("c-old", T)])], state, Net(), run_id="run-0")
    _send(
        [user("u1", [content_event("c-new", T), content_event("c2", T_LATER)])],
        state,
        ProfileNet(["vanished"], profile_plan=["no_params"] * 20),
        run_id="run-1",
    )
    assert duplicates(insider, [user("u1", [])]) == 0
    letters = [dl for dl in state.dead_letters() if dl.reason == "unsettled_lost_answer"]
    assert len(letters) == 1
    items = {e["event_params"]["custom"]["content_id"] for e in letters[0].payload.get("events", [])}
    assert {"c-new", "c2"} <= items


# == L. a replay while a run holds a marker for the same user ==============================================


def _letter(u: str, item: str) -> dict:
    return {
        "user_key": u,
        "reason": "vendor_rejected",
        "detail": "",
        "payload": {**user(u, [content_event(item, T)]), "identifiers": {"uuid": u, "email": f"{u}@x.io"}},
    }


@pytest.mark.parametrize("wait_lease", [False, True])
def test_l_replay_while_a_dead_run_holds_a_marker_for_the_same_user(insider, state, tmp_path, wait_lease):
    store = state._store
    store.add_dead_letters("run-0", [_letter("u1", "c0"), _letter("u2", "c9")])
    a_users = [
        {**user(u, [content_event(f"a-{u}", T)]), "identifiers": {"uuid": u, "email": f"{u}@x.io"}}
        for u in ("u1", "u3")
    ]
    with contextlib.suppress(Killed):
        _send(a_users, state, Net(["kill_after"]), run_id="run-A")
    if wait_lease:
        time.sleep(LEASE_S + 0.2)
    plan = prepare_replay(store, tmp_path / "replay")
    net = Net()
    net.state = Dying(store)
    send_file(plan.users_path, state=net.state, hook=hook(net), run_id="replay-1", wait_for_claims=False)
    done = finish_replay(store, plan, "replay-1")
    assert replay_gap(plan, done) == 0
    if not wait_lease:
        assert [dl.user_key for dl in store.dead_letters()] == ["u1"]  # claimed by run-A: pending
        time.sleep(LEASE_S + 0.2)
        plan = prepare_replay(store, tmp_path / "replay2")
        net = Net()
        net.state = Dying(store)
        send_file(plan.users_path, state=net.state, hook=hook(net), run_id="replay-2", wait_for_claims=False)
        assert replay_gap(plan, finish_replay(store, plan, "replay-2")) == 0
    assert store.dead_letters() == []
    stored = insider.events(["u1", "u2", "u3"])
    assert stored["u1"] == Counter({("content_published", "c0", T): 1, ("content_published", "a-u1", T): 1})
    assert stored["u2"] == Counter({("content_published", "c9", T): 1})
    assert stored["u3"] == Counter({("content_published", "a-u3", T): 1})
    assert store.in_flight() == []


# == M. two runs settling each other's markers =============================================================


@pytest.mark.parametrize("dies", ["kill_before", "kill_after"])
def test_m_two_runs_settle_each_others_markers_concurrently(insider, state, dies):
    store = state._store
    everyone = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in range(1, 7)]
    for run, part in (("run-A", everyone[0:3]), ("run-B", everyone[3:6])):
        with contextlib.suppress(Killed):
            _send(part, Dying(store), Net([dies]), run_id=run)
    assert len(store.in_flight()) == 2
    time.sleep(LEASE_S + 0.2)
    errors: list[BaseException] = []

    def run(run_id: str, users: list[dict]) -> None:
        try:
            _send(users, Dying(store), Net(), run_id=run_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("run-C", everyone[3:] + everyone[:3])),
        threading.Thread(target=run, args=("run-D", everyone)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    time.sleep(LEASE_S + 0.2)
    _send(everyone, Dying(store), Net(), run_id="run-E")  # whatever C and D skipped as claimed elsewhere
    assert check_delivery(insider, store, everyone, rejected=set()) == []
    assert store.in_flight() == []


# == B'. one user's events over several lost batches / a partially stored user =============================


@pytest.mark.parametrize("plan", [["lost", "lost"], ["vanished", "lost"], ["lost", "vanished"]])
def test_b_a_user_split_over_several_lost_batches(insider, state, plan):
    """The same user on two lines, each in a batch of its own (max_users=1), both answers lost."""
    users = [user("u1", [content_event("c1", T)]), user("u1", [content_event("c2", T)])]
    _send(users, state, Net(plan), run_id="run-1", max_users=1)
    _send(users, state, Net(), run_id="run-2", max_users=1)
    everyone = [user("u1", [content_event("c1", T), content_event("c2", T)])]
    assert check_delivery(insider, state, everyone, rejected=set()) == []


@pytest.mark.parametrize("upsert", ["lost", "vanished"])
def test_b_a_user_whose_events_are_partially_stored(insider, state, upsert):
    """Insider already holds c1 of u1 though the ledger does not (an earlier release, a restored state
    database); a batch with c1 and c2 is lost: c1 is found and acknowledged, only c2 is sent again."""
    _send([user("u1", [content_event("c1", T)])], state, Net(), run_id="run-0", claims=False)
    with state._store.write() as conn:
        conn.execute(schema.acknowledged_events.delete())
    users = [user("u1", [content_event("c1", T), content_event("c2", T)])]
    _send(users, state, Net([upsert]), run_id="run-1")
    if upsert == "vanished":
        assert check_delivery(insider, state, users, rejected=set()) == []
    else:  # processed: c1 is at Insider twice by the lost request itself, nothing more
        assert insider.events(["u1"])["u1"][("content_published", "c2", T)] == 1


# == N. the lease passes during probing ====================================================================


@pytest.mark.parametrize("upsert", ["lost", "vanished"])
def test_n_the_lease_passes_while_an_attempt_waits_to_probe(insider, state, upsert):
    """Run A's answer is lost and it waits 2 leases before its first probe (the settle sleep renews no
    lease); run B claims the users meanwhile, settles A's marker and sends what is missing. A must stop at
    its first probe or at its record (FencedOut), never re-send."""
    from creator_sync.pipeline.settle import ProbeSettings

    store = state._store
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    a_net, outcome = Net([upsert]), []

    def run_a() -> None:
        try:
            _send(users, Dying(store), a_net, run_id="run-A", probe=ProbeSettings(2 * LEASE_S, 3, 0.2))
            outcome.append("done")
        except FencedOut:
            outcome.append("fenced")

    a = threading.Thread(target=run_a)
    a.start()
    while a_net.upserts == 0:
        time.sleep(0.01)
    time.sleep(LEASE_S + 0.1)
    _send(users, Dying(store), Net(), run_id="run-B")
    a.join(30)
    assert outcome == ["fenced"]
    assert a_net.upserts == 1
    assert check_delivery(insider, store, users, rejected=set()) == []
    assert store.in_flight() == []


def test_n_the_lease_passes_between_probe_rounds(insider, state, monkeypatch):
    """Same, with the lease passing during the backoff between rounds (Insider lags the first round)."""
    from creator_sync.pipeline.settle import ProbeSettings

    insider.sandbox.configure("insider", {"ingestion_lag_seconds": 0.5})
    store = state._store
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    a_net, outcome = Net(["vanished"]), []

    def run_a() -> None:
        try:
            _send(users, Dying(store), a_net, run_id="run-A", probe=ProbeSettings(0.05, 3, 1.5 * LEASE_S))
            outcome.append("done")
        except FencedOut:
            outcome.append("fenced")

    a = threading.Thread(target=run_a)
    a.start()
    while a_net.upserts == 0:
        time.sleep(0.01)
    time.sleep(LEASE_S + 0.3)
    _send(users, Dying(store), Net(), run_id="run-B")
    a.join(30)
    assert outcome == ["fenced"] and a_net.upserts == 1
    time.sleep(1)
    assert check_delivery(insider, store, users, rejected=set()) == []


# == O. a very large batch =================================================================================


def test_o_a_large_batch_with_lost_answers_then_smaller_ones(insider, state):
    """250 users in one request whose answer is lost: 250 probes; the next batch (150 users) goes out in
    parts of 100 after the lost answer, and the first part is lost on the way."""
    users = [user(f"big{i}", [content_event(f"c{i}", T)]) for i in range(400)]
    report = _send(users, state, Net(["lost", "vanished"]), max_users=250)
    assert report.in_flight_confirmed == 250 and report.lost_answers == 2
    assert report.requests == 2  # 150 users in parts of 100 and 50 (the first settled and re-sent)
    assert check_delivery(insider, state, users, rejected=set()) == []
    assert state.in_flight() == []


# == P. the offboarding purge of a user inside a marker ====================================================


@pytest.mark.parametrize(
    "dies",
    ["kill_before", "kill_after"],
)
def test_p_purge_of_a_creator_inside_a_dead_runs_marker(insider, state, dies):
    from creator_sync.store import OffboardingState

    store = state._store
    users = [
        {**user(u, [content_event(f"c-{u}", T)]), "identifiers": {"uuid": u, "email": f"{u}@x.io"}}
        for u in ("u1", "u2")
    ]
    with contextlib.suppress(Killed):
        _send(users, state, Net([dies]), run_id="run-A")
    time.sleep(LEASE_S + 0.2)
    off = OffboardingState(store)
    off.mark_offboarded("u1", "accounts_disconnected")
    off.purge("u1")
    assert "u1@x.io" not in json.dumps(store.in_flight())
    report = _send(users, Dying(store), Net(), run_id="run-B")
    assert report.offboarded == 1
    stored = insider.events(["u1", "u2"])
    assert sum(stored.get("u1", Counter()).values()) == (1 if dies == "kill_after" else 0)
    assert stored["u2"] == Counter({("content_published", "c-u2", T): 1})
    assert store.in_flight() == []
    assert "u1" not in store.attribute_hashes(["u1"])  # the purge's erasure is not undone by the settlement


# == Q. the migrations on an existing database while another process writes ================================


def test_q_upgrading_a_previous_release_database_while_it_is_written(tmp_path):
    """A 0.1.0 database; an old-release process keeps writing the ledger (its own short transactions)
    while two new processes open the store (each upgrades it) at once. Nothing written is lost, the schema
    ends at head once, and the new store sends against it."""
    import sqlite3
    from pathlib import Path

    from creator_sync.store import migrate

    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # as 0.1.0's engine left every state database
    conn.executescript((Path(__file__).parents[1] / "store" / "state_schema_0_1_0.sql").read_text())
    conn.execute("INSERT INTO send_claims VALUES ('u-old', 'r-old', ?)", (time.time() + 600,))
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    errors: list[BaseException] = []
    go = threading.Event()

    def old_writer() -> None:
        c = sqlite3.connect(path, timeout=60)
        try:
            go.wait()
            for i in range(300):
                c.execute(
                    "INSERT INTO acknowledged_events (event_key, user_key, run_id, batch_key, acked_at) "
                    "VALUES (?, 'u1', 'r-old', 'b', '2026-12-01 10:00:00.000000')",
                    (f"k{i}",),
                )
                c.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            c.close()

    stores: list[StateStore] = []

    def opener() -> None:
        try:
            go.wait()
            stores.append(StateStore(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=old_writer), threading.Thread(target=opener)]
    threads.append(threading.Thread(target=opener))
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(120)
    assert errors == []
    store = stores[0]
    with store.engine.connect() as c:
        assert migrate.current(c) == migrate.head()
    assert len(store.acknowledged(f"k{i}" for i in range(300))) == 300
    assert store.claim("run-new", ["u-old"], 1.0, fence="f") == set()  # the old release's live claim holds


# == R. clock skew between processes =======================================================================


class _SkewedTime:
    """The time module as seen by one thread whose clock is ``skew`` seconds ahead."""

    def __init__(self) -> None:
        self.local = threading.local()

    def time(self) -> float:
        return time.time() + getattr(self.local, "skew", 0.0)

    def __getattr__(self, name):
        return getattr(time, name)


def test_r_a_process_whose_clock_runs_a_lease_ahead_does_not_resend_a_live_attempts_batch(
    insider, monkeypatch
):
    """Run A renews its lease and sends; its request takes less than a lease to reach Insider (inside the
    documented bound). Run B runs on a host whose clock is two leases ahead. On PostgreSQL (workers on
    several hosts) leases are read from the database's clock, so B compares the same times as A and waits;
    SQLite serves one host, whose clock every process shares."""
    import creator_sync.store.engine as engine_module
    from devtools.celery_stack import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, unique_name
    from devtools.services import require_postgres

    require_postgres("leases on the database clock")
    name = unique_name("cs_skew")
    create_database(name)
    store = StateStore(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        _skewed_runs(insider, store, monkeypatch, engine_module)
    finally:
        store.engine.dispose()
        drop_database(name)


def _skewed_runs(insider, store, monkeypatch, engine_module) -> None:
    skewed = _SkewedTime()
    monkeypatch.setattr(engine_module, "time", skewed)
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "0")
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)]
    go = threading.Event()
    a_net = Net(["stall"], stall=go)

    def run_a() -> None:
        with contextlib.suppress(FencedOut):
            _send(users, Dying(store), a_net, run_id="run-A")

    a = threading.Thread(target=run_a, daemon=True)
    a.start()
    while a_net.upserts == 0:
        time.sleep(0.01)
    sent_at = time.monotonic()

    def run_b() -> None:
        from creator_sync.pipeline.settle import ProbeSettings

        skewed.local.skew = 2 * LEASE_S
        # B does not wait for A's users (CREATOR_SYNC_CLAIM_WAIT_S=0): it fails at once unless it took them
        with contextlib.suppress(ClaimsHeldElsewhere):
            _send(users, Dying(store), Net(), run_id="run-B", probe=ProbeSettings(0.05, 1, 0.0))

    b = threading.Thread(target=run_b)
    b.start()
    b.join(30)
    assert time.monotonic() - sent_at < LEASE_S  # A's request is held less than a lease: in bounds
    go.set()
    a.join(30)
    assert duplicates(insider, users) == 0
