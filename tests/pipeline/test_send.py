from __future__ import annotations

from collections import Counter

import pytest

from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import send_file
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import StateStore

from .factories import END, START, FakeInsiderHook, content, profile


def creators(n: int) -> tuple[list[dict], list[dict]]:
    users = [{"id": f"u{i}", "external_id": f"e{i}"} for i in range(n)]
    profiles = [
        profile(f"u{i}", f"a{i}", "Instagram", "2024-04-01T00:00:00Z", first_name=f"N{i}",
                emails=[{"type": "WORK", "email_id": f"u{i}@example.com"}])
        for i in range(n)
    ]  # fmt: skip
    return users, profiles


@pytest.fixture
def state(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def transform(fetched, tmp_path, name, **kw):
    kw.setdefault("transactions", [])
    return transform_run(fetched(**kw), start=START, end=END, out_dir=tmp_path / name)


def six_creators_with_three_events_each(fetched, tmp_path):
    users, profiles = creators(6)
    contents = [content(f"c{i}", f"u{i % 6}", "2024-05-01T10:00:00Z") for i in range(18)]
    return transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=contents)


def send(result, state, hook, run_id="run-1", **kw):
    return send_file(
        result.users_path, rejected_path=result.rejected_path, state=state, hook=hook, run_id=run_id, **kw
    )


def test_second_run_of_the_same_interval_sends_nothing(fetched, tmp_path, state):
    users, profiles = creators(5)
    contents = [content(f"c{i}", f"u{i % 5}", "2024-05-01T10:00:00Z") for i in range(12)]
    result = transform(fetched, tmp_path, "t1", users=users, profiles=profiles, contents=contents)

    first = send(result, state, hook := FakeInsiderHook(per_batch=2))
    assert (first.users_sent, first.events_sent, first.requests) == (5, 12, 3)
    assert len(hook.sent_events()) == 12

    again = send(result, state, hook2 := FakeInsiderHook(per_batch=2), run_id="run-1-retry")
    assert hook2.requests == []
    assert (again.users_sent, again.events_sent, again.unchanged) == (0, 0, 5)
    assert again.events_already_acknowledged == 12
    summary = build_summary("run-1-retry", result.stats, again)
    assert summary.reconciled, summary.render()


def test_crash_between_batches_resumes_without_sending_an_event_twice(fetched, tmp_path, state):
    result = six_creators_with_three_events_each(fetched, tmp_path)

    crashing = FakeInsiderHook(per_batch=2, crash_after=2)
    with pytest.raises(ConnectionError):
        send(result, state, crashing)
    assert len(crashing.requests) == 2  # two batches acknowledged before the crash

    retry = FakeInsiderHook(per_batch=2)
    report = send(result, state, retry)
    assert len(retry.requests) == 1 and report.unchanged == 4
    delivered = crashing.sent_events() + retry.sent_events()
    assert len(delivered) == 18
    assert max(Counter(delivered).values()) == 1  # no event twice


@pytest.mark.parametrize("lost_answer", [True, False], ids=["request-arrived", "request-lost"])
def test_unanswered_batch_is_checked_at_insider_not_blindly_resent(fetched, tmp_path, state, lost_answer):
    result = six_creators_with_three_events_each(fetched, tmp_path)

    crashing = FakeInsiderHook(per_batch=2, crash_after=1, lost_answer=lost_answer)
    with pytest.raises(ConnectionError):
        send(result, state, crashing)
    assert len(state.in_flight()) == 1

    retry = FakeInsiderHook(per_batch=2)
    retry.stored_by_others = crashing.sent_users()  # what Insider holds from the first attempt
    report = send(result, state, retry)
    # one probe per user of the 2-user batch and round; users not found are asked in every round
    assert retry.profile_calls == (2 if lost_answer else 6) and state.in_flight() == []
    assert (report.in_flight_confirmed, report.in_flight_resent) == ((2, 0) if lost_answer else (0, 2))
    delivered = crashing.sent_events() + retry.sent_events()
    assert len(delivered) == 18
    assert max(Counter(delivered).values()) == 1  # no event twice, none lost


def test_an_arrived_batch_whose_first_user_insider_rejected_is_not_resent(fetched, tmp_path, state):
    result = six_creators_with_three_events_each(fetched, tmp_path)
    ok = FakeInsiderHook(per_batch=3, crash_after=1, lost_answer=True)
    with pytest.raises(ConnectionError):
        send(result, state, ok)
    lost_batch = ok.requests[1]
    rejected_uuid = lost_batch[0]["identifiers"]["uuid"]  # Insider refused this user, stored the other two

    retry = FakeInsiderHook(per_batch=3)
    retry.stored_by_others = [u for u in ok.sent_users() if u["identifiers"]["uuid"] != rejected_uuid]
    report = send(result, state, retry)

    assert (report.in_flight_confirmed, report.in_flight_resent) == (2, 1)
    assert [u["identifiers"]["uuid"] for u in retry.sent_users()] == [rejected_uuid]  # only it is retried
    stored = [e for e in ok.sent_events() if e[0] != rejected_uuid] + retry.sent_events()
    assert len(stored) == 18 and max(Counter(stored).values()) == 1  # none twice, none lost


def test_partial_failure_in_a_200_goes_to_dead_letters(fetched, tmp_path, state):
    users, profiles = creators(4)
    result = transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=[])

    def fail(user):
        if user["identifiers"]["uuid"] == "u2":
            return ["users.1.identifiers.*.regexp(^.+@.+\\..+$): not a valid email address: x"]
        return None

    report = send(result, state, FakeInsiderHook(per_batch=3, fail=fail))
    assert report.users_sent == 3 and report.rejected == {"vendor_rejected": 1}
    letters = state.dead_letters(reasons=["vendor_rejected"])
    assert [(dl.user_key, dl.run_id) for dl in letters] == [("u2", "run-1")]
    assert "not a valid email address" in letters[0].detail
    assert letters[0].payload["identifiers"]["uuid"] == "u2"
    # not acknowledged: the next run sends u2 again, the others are unchanged
    retry = FakeInsiderHook()
    again = send(result, state, retry, run_id="run-2")
    assert [u["identifiers"]["uuid"] for u in retry.sent_users()] == ["u2"]
    assert again.unchanged == 3
    assert build_summary("run-2", result.stats, again).reconciled


def test_transform_rejections_become_dead_letters_without_an_api_call(fetched, tmp_path, state):
    result = transform(fetched, tmp_path, "t")  # default fixture: 1 valid, 3 invalid
    hook = FakeInsiderHook()
    report = send(result, state, hook)
    assert state.count_dead_letters("run-1") == {
        "malformed_email": 1,
        "no_usable_identifier": 1,
        "non_e164_phone": 1,
    }
    assert [u["identifiers"]["uuid"] for u in hook.sent_users()] == ["u1"]
    summary = build_summary("run-1", result.stats, report)
    assert summary.reconciled and summary.rejected_total == 3
    send(result, state, FakeInsiderHook())  # idempotent dead letters on retry
    assert sum(state.count_dead_letters("run-1").values()) == 3


def test_unchanged_users_are_skipped_but_their_new_events_are_sent(fetched, tmp_path, state):
    users, profiles = creators(3)
    day1 = [content("c1", "u0", "2024-05-01T10:00:00Z")]
    send(
        transform(fetched, tmp_path, "t1", users=users, profiles=profiles, contents=day1),
        state,
        FakeInsiderHook(),
    )

    # same attributes, one more content item for u0 (the fetch returns the whole day again)
    # (no engagement yet, so u0_engagement_count, an attribute, does not change either)
    quiet = {"like_count": 0, "comment_count": 0, "view_count": 0, "share_count": 0}
    day1b = [*day1, content("c2", "u0", "2024-05-01T11:00:00Z", engagement=quiet)]
    hook = FakeInsiderHook()
    report = send(
        transform(fetched, tmp_path, "t2", users=users, profiles=profiles, contents=day1b), state, hook
    )
    sent = hook.sent_users()
    assert len(sent) == 1 and set(sent[0]) == {"identifiers", "events"}  # attributes unchanged: not resent
    assert [e["event_params"]["custom"]["content_id"] for e in sent[0]["events"]] == ["c2"]
    assert (report.unchanged, report.users_sent, report.events_sent) == (2, 1, 1)

    # an attribute change sends the full user again
    profiles[1]["first_name"] = "Renamed"
    hook = FakeInsiderHook()
    send(transform(fetched, tmp_path, "t3", users=users, profiles=profiles, contents=day1b), state, hook)
    assert [u["attributes"]["name"] for u in hook.sent_users()] == ["Renamed"]


def test_locally_oversized_user_is_dead_lettered(fetched, tmp_path, state):
    users, profiles = creators(2)
    result = transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=[])
    hook = FakeInsiderHook(max_bytes=10)
    report = send(result, state, hook)
    assert hook.requests == [] and report.rejected == {"user_too_large": 2}


def test_skip_hook_is_a_request_flag(fetched, tmp_path, state):
    users, profiles = creators(1)
    result = transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=[])
    hook = FakeInsiderHook()
    send(result, state, hook, skip_hook=True)
    assert hook.skip_hooks == [True]
    assert "skip_hook" not in hook.sent_users()[0]


def test_with_the_real_insider_hook_batching_and_200_parsing(fetched, tmp_path, state):
    insider = pytest.importorskip("creator_sync.hooks.insider")

    class Hook(FakeInsiderHook):
        def plan_batches(self, users, **kw):
            return insider.InsiderHook.plan_batches(self, users, max_users=2, **kw)

        def upsert_batch(self, batch, *, skip_hook, error_callback_endpoint=None, before_attempt=None):
            self.requests.append(batch.users)
            body = {"data": {"successful": {}, "fail": {"count": 1, "errors": {
                "users.0.identifiers.*.type(string)": ["uuid must be string: 12345"]}}}}  # fmt: skip
            return insider.parse_upsert_errors(body, len(batch.users))

    users, profiles = creators(3)
    result = transform(fetched, tmp_path, "t", users=users, profiles=profiles, contents=[])
    report = send(result, state, Hook())
    assert report.requests == 2 and report.users_sent == 1 and report.rejected == {"vendor_rejected": 2}
