from __future__ import annotations

import dataclasses

from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.replay import replay_dead_letters
from creator_sync.pipeline.send import send_file
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import StateStore

from .factories import END, START, FakeInsiderHook


def test_replay_rebuilds_revalidates_and_marks(fetched, tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    result = transform_run(fetched(), start=START, end=END, out_dir=tmp_path / "t")
    send_file(
        result.users_path,
        rejected_path=result.rejected_path,
        state=state,
        hook=FakeInsiderHook(),
        run_id="r1",
    )

    # with today's rules nothing changes: all stay pending, nothing sent
    hook = FakeInsiderHook()
    report = replay_dead_letters(state, hook, run_id="replay-1")
    assert hook.requests == [] and report.marked_replayed == 0
    assert report.still_invalid == {"malformed_email": 1, "no_usable_identifier": 1, "non_e164_phone": 1}

    # the business rule switched off: the no-identifier creator can go, uuid only, with skip_hook
    relaxed = dataclasses.replace(load_mapping(), require_contact_identifier=False)
    hook = FakeInsiderHook()
    report = replay_dead_letters(
        state, hook, run_id="replay-2", reasons=["no_usable_identifier"], mapping=relaxed
    )
    assert [u["identifiers"]["uuid"] for u in hook.sent_users()] == ["u4"] and hook.skip_hooks == [True]
    assert report.send.users_sent == 1 and report.marked_replayed == 1
    assert {dl.reason for dl in state.dead_letters()} == {"malformed_email", "non_e164_phone"}


def test_replay_of_an_old_payload_does_not_overwrite_newer_attributes(fetched, tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    payload = {"identifiers": {"uuid": "u1", "email": "a@example.com"}, "attributes": {"name": "Old"}}
    state.add_dead_letters(
        "r0", [{"user_key": "u1", "reason": "vendor_rejected", "detail": "", "payload": payload}]
    )
    state.record_batch(run_id="r1", batch_key="b", events=[], hashes=[("u1", "newer")], failures=[])
    hook = FakeInsiderHook()
    report = replay_dead_letters(state, hook, run_id="replay")
    assert report.superseded == 1 and hook.requests == [] and report.marked_replayed == 1
