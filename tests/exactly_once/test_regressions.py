"""The six ways the sender lost or duplicated data with chosen data, each against the Insider sandbox through
a network that loses answers, and each with a control that switches its guard off and shows the loss or the
duplicate come back."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

import creator_sync.pipeline.send as send_module
from creator_sync.pipeline.replay import finish_replay, prepare_replay, replay_gap
from creator_sync.pipeline.send import send_file, send_users
from creator_sync.pipeline.settle import UserVerdict

from .conftest import LEASE_S
from .harness import Net, check_delivery, check_ledger, content_event, duplicates, hook, user

T = "2026-12-01T10:00:00Z"


def _send(users, state, net, run_id="run-1", attempts=3, **kw):
    net.state = state
    return send_users(users, state=state, hook=hook(net, attempts), run_id=run_id, **kw)


# -- 1. a probe that matches the wrong event -------------------------------------------------------------


def _cross_post(insider, state):
    """u0 already holds item c-old at T; a batch with u0's cross-post c-new at the same second T and two
    new creators is lost on its way (never processed)."""
    _send([user("u0", [content_event("c-old", T)])], state, Net(), run_id="run-0")
    batch = [user("u0", [content_event("c-new", T)])] + [
        user(f"u{i}", [content_event(f"c{i}", T)]) for i in (1, 2)
    ]
    _send(batch, state, Net(["vanished"]))
    return [user("u0", [content_event("c-old", T), content_event("c-new", T)]), *batch[1:]]


def test_1_a_probe_matches_the_event_by_its_identity_not_by_name_and_second(insider, state):
    everyone = _cross_post(insider, state)
    assert check_delivery(insider, state, everyone, rejected=set()) == []


def test_1_control_matching_by_name_and_second_loses_the_cross_post(insider, state, monkeypatch):
    import creator_sync.pipeline.settle as settle

    monkeypatch.setattr(settle, "_verdict", lambda event, rows, sent_at: "found" if rows else "missing")
    everyone = _cross_post(insider, state)
    problems = check_delivery(insider, state, everyone, rejected=set())
    assert any("c-new" in p and "0 times" in p for p in problems), problems
    assert any("ledger acknowledges" in p for p in problems), problems


# -- 2. one probe speaks for the whole batch / 3. rejected probe users read as "not arrived" ----------------


def _lost_batch_with_rejections(insider, state, rejected: list[str]):
    insider.sandbox.configure("insider", {"reject_uuids": rejected})
    users = [user(f"u{i}", [content_event(f"c{i}", T), content_event(f"d{i}", T)]) for i in range(1, 6)]
    report = _send(users, state, Net(["lost"]))
    return users, report


def _whole_batch_verdicts(real, rule):
    def verdicts(hook, entries, settings, **kw):
        return rule(entries, real(hook, entries, settings, **kw))

    return verdicts


def test_2_each_user_of_a_lost_batch_is_settled_on_its_own(insider, state):
    users, report = _lost_batch_with_rejections(insider, state, ["u4"])
    assert check_delivery(insider, state, users, rejected={"u4"}) == []
    assert [dl.reason for dl in state.dead_letters() if dl.user_key == "u4"] == ["vendor_rejected"]
    assert report.in_flight_confirmed == 4 and report.rejected == {"vendor_rejected": 1}


def test_2_control_one_found_probe_acknowledging_the_batch_records_a_rejected_user_as_sent(
    insider, state, monkeypatch
):
    def any_found_means_all(entries, verdicts):
        if not any(v.arrived for v in verdicts):
            return verdicts
        return [UserVerdict(found=[m["key"] for m in e["events"]]) for e in entries]

    monkeypatch.setattr(
        send_module, "settle_users", _whole_batch_verdicts(send_module.settle_users, any_found_means_all)
    )
    users, _ = _lost_batch_with_rejections(insider, state, ["u4"])
    problems = check_delivery(insider, state, users, rejected={"u4"})
    assert "u4: rejected by Insider and no dead letter" in problems
    assert any(p.startswith("u4: ledger acknowledges") for p in problems)


def test_3_rejected_users_among_the_first_of_a_lost_batch_do_not_resend_the_others(insider, state):
    users, _ = _lost_batch_with_rejections(insider, state, ["u1", "u2", "u3"])
    assert check_delivery(insider, state, users, rejected={"u1", "u2", "u3"}) == []
    assert duplicates(insider, users) == 0


def test_3_control_judging_the_batch_by_its_first_three_users_appends_the_others_twice(
    insider, state, monkeypatch
):
    def first_three_decide(entries, verdicts):
        probed = [i for i, e in enumerate(entries) if e["events"]][:3]
        if any(verdicts[i].found for i in probed):
            return verdicts
        return [UserVerdict(missing=[m["key"] for m in e["events"]]) for e in entries]

    monkeypatch.setattr(
        send_module, "settle_users", _whole_batch_verdicts(send_module.settle_users, first_three_decide)
    )
    users, _ = _lost_batch_with_rejections(insider, state, ["u1", "u2", "u3"])
    assert duplicates(insider, users) == 4  # u4 and u5: two events each, appended twice


# -- 4. two attempts of one run overlap ------------------------------------------------------------------


def _zombie_and_retry(insider, state, retry_fence: str | None):
    """Attempt 1 of run-1 stalls with its request on the way (the scheduler gave up on it); attempt 2 starts
    while it is stalled; the stalled request goes out half a lease later."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in range(4)]
    go = threading.Event()
    zombie_net = Net(["stall"], stall=go)
    zombie = threading.Thread(
        target=lambda: _send(users, state, zombie_net, fence="run-1#1#zombie"), daemon=True
    )
    zombie.start()
    while zombie_net.upserts == 0:
        time.sleep(0.01)
    threading.Timer(LEASE_S / 2, go.set).start()
    _send(users, state, Net(), fence=retry_fence or "run-1#2#retry")
    zombie.join(30)
    return users


def test_4_a_retry_waits_while_an_earlier_attempt_of_its_run_still_holds_the_users(insider, state):
    users = _zombie_and_retry(insider, state, retry_fence=None)
    assert check_delivery(insider, state, users, rejected=set()) == []


def test_4_control_claims_that_do_not_tell_attempts_apart_send_twice(insider, state):
    users = _zombie_and_retry(insider, state, retry_fence="run-1#1#zombie")  # the old run-level claims
    assert duplicates(insider, users) == 4


# -- 5. a lease that ends inside a batch -----------------------------------------------------------------


def _throttled_batch_and_a_second_run(insider, state):
    """Run A's batch is refused three times with Retry-After: 1 (3 s of waiting, three leases); run B starts
    in the middle of it with the same users, and is done probing before A's request goes out."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in range(4)]
    slow = threading.Thread(
        target=lambda: _send(users, state, Net(["throttled"] * 3), run_id="run-A", attempts=4), daemon=True
    )
    slow.start()
    time.sleep(1.5 * LEASE_S)
    other = _send(users, state, Net(), run_id="run-B")
    slow.join(30)
    return users, other


def test_5_the_lease_is_renewed_before_every_retry_so_another_run_cannot_take_the_users(insider, state):
    users, other = _throttled_batch_and_a_second_run(insider, state)
    # B waits for A's users, then finds A's events acknowledged: it sends nothing
    assert other.waited_for_other_runs == 4 and other.users_sent == 0 and other.claimed_elsewhere == 0
    assert check_delivery(insider, state, users, rejected=set()) == []


def test_5_control_a_lease_renewed_only_after_the_batch_lets_another_run_send_it_too(
    insider, state, monkeypatch
):
    monkeypatch.setattr(send_module._Send, "renew", lambda self, user_keys=(): None)
    users, _ = _throttled_batch_and_a_second_run(insider, state)
    assert duplicates(insider, users) == 4


# -- 6. replay marks only what Insider acknowledged ------------------------------------------------------


def _replay_with_a_claimed_user(insider, state, tmp_path, finish):
    letters = [
        {
            "user_key": u,
            "reason": "vendor_rejected",
            "detail": "",
            # a contact identifier: the mapping's business rule asks for one
            "payload": {
                **user(u, [content_event(f"c-{u}", T)]),
                "identifiers": {"uuid": u, "email": f"{u}@x.io"},
            },
        }
        for u in ("u1", "u2")
    ]
    state.add_dead_letters("run-0", letters)
    state.claim("live-run", ["u2"], lease_s=600)  # another run is sending u2 right now
    plan = prepare_replay(state, tmp_path / "replay")
    net = Net()
    net.state = state
    send_file(plan.users_path, state=state, hook=hook(net), run_id="replay-1", wait_for_claims=False)
    done = finish(state, plan, "replay-1")
    return plan, done


def test_6_replay_marks_only_the_letters_whose_user_it_sent(insider, state, tmp_path):
    plan, done = _replay_with_a_claimed_user(insider, state, tmp_path, finish_replay)
    assert [dl.user_key for dl in state.dead_letters()] == ["u2"]  # still pending
    assert done.settled == {"sent": 1} and done.skipped == {"claimed_elsewhere": 1}
    assert replay_gap(plan, done) == 0


def test_6_control_marking_every_handed_letter_loses_the_skipped_one(insider, state, tmp_path):
    def mark_all(state, plan, run_id):
        state.mark_replayed(plan.letter_ids)

    _replay_with_a_claimed_user(insider, state, tmp_path, mark_all)
    assert state.dead_letters() == []  # u2's letter left the queue ...
    assert insider.events(["u2"])["u2"] == Counter()  # ... though u2 never reached Insider


def test_the_ledger_check_sees_an_acknowledged_event_insider_does_not_hold(insider, state):
    """The harness's own guard: a ledger entry without the event at Insider is reported."""
    users = [user("u1", [content_event("c1", T)])]
    _send(users, state, Net(["refused"]), dry_run=False)
    assert check_ledger(insider, state, users) == []
    insider.sandbox.reset("insider")
    assert check_ledger(insider, state, users) != []


# -- processed after the client gave up (a real read timeout) ---------------------------------------------


class SlowUpsertOnce(httpx.BaseTransport):
    """The real network: the first upsert is held by Insider longer than the client's read timeout (the
    sandbox's ``slow`` fault), and Insider processes it after the client gave up."""

    def __init__(self, sandbox, hold_s: float) -> None:
        self.inner, self.sandbox, self.hold_s, self.slowed = httpx.HTTPTransport(), sandbox, hold_s, False

    def handle_request(self, request):
        if not request.url.path.endswith("/upsert") or self.slowed:
            return self.inner.handle_request(request)
        self.slowed = True
        self.sandbox.configure("insider", {"fault_slow": 1.0, "slow_seconds": self.hold_s})
        try:
            return self.inner.handle_request(request)
        finally:
            self.sandbox.configure("insider", {"fault_slow": 0.0})


def _slow_upsert(insider, state, probe, hold_s: float = 1.2):
    from creator_sync.hooks.insider import InsiderHook
    from creator_sync.http.client import RetrySettings
    from creator_sync.http.limiter import UnlimitedLimiter
    from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL

    insider.sandbox.configure("insider", {"complete_after_disconnect": True})
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in range(3)]
    real = InsiderHook(
        transport=SlowUpsertOnce(insider.sandbox, hold_s=hold_s),
        timeout=0.3,
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
        limiters={INSIDER_UPSERT_POOL: UnlimitedLimiter(), INSIDER_PROFILE_POOL: UnlimitedLimiter()},
    )
    report = send_users(users, state=state, hook=real, run_id="run-1", probe=probe)
    time.sleep(hold_s + 0.3)  # anything still on its way has landed
    return users, report


def test_a_request_processed_after_the_client_gave_up_is_found_by_the_retried_probes(insider, state):
    """Read timeout 0.3 s, Insider processes the request 1.2 s after it arrived: the first look (0.6 s)
    misses it, a later probe round (1.1 s, 2.1 s) finds it, nothing is sent again."""
    from creator_sync.pipeline.settle import ProbeSettings

    users, report = _slow_upsert(insider, state, ProbeSettings(settle_s=0.3, rounds=3, backoff_s=0.5))
    assert report.lost_answers == 1 and report.in_flight_confirmed == 3
    assert check_delivery(insider, state, users, rejected=set()) == []


def test_control_one_look_at_the_read_timeout_sends_a_request_processed_later_twice(insider, state):
    from creator_sync.pipeline.settle import ProbeSettings

    # held 4 s: the one look (0.6 s after the send) misses it even when a loaded machine delays the look by
    # seconds, so the control shows the resend whatever the load
    users, _ = _slow_upsert(insider, state, ProbeSettings(settle_s=0.3, rounds=1, backoff_s=0.0), hold_s=4.0)
    assert duplicates(insider, users) == 3
