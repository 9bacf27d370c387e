"""InsightIQ records without the id they are joined on: dead letters with reason malformed_source_record,
counted so the reconciliation still holds; never dropped silently, never a crash."""

from __future__ import annotations

from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import send_file
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import StateStore

from .factories import END, START, FakeInsiderHook, content, profile


def test_records_without_their_id_are_dead_lettered_and_reconciled(fetched, tmp_path):
    users = [
        {"id": "u0", "external_id": "e0"},
        {"id": None, "external_id": "lost"},  # a user without id: a fetched creator that cannot be sent
        {"id": " ", "external_id": "blank"},
    ]
    profiles = [
        profile("u0", "a0", "Instagram", "2024-04-01T00:00:00Z", first_name="N0",
                emails=[{"type": "WORK", "email_id": "u0@example.com"}]),
        {**profile("x", "a9", "Instagram", "2024-04-01T00:00:00Z"), "user": {"id": None}},
    ]  # fmt: skip
    contents = [
        content("c1", "u0", "2024-05-01T10:00:00Z"),
        {**content("c2", "u0", "2024-05-01T11:00:00Z"), "user": {"id": None}},
    ]
    result = transform_run(
        fetched(users=users, profiles=profiles, contents=contents, transactions=[]),
        start=START,
        end=END,
        out_dir=tmp_path / "t",
    )
    stats = result.stats
    assert stats.fetched_creators == 3 and stats.users_written == 1 and stats.events_written == 1
    assert stats.rejected == {"malformed_source_record": 2}
    assert stats.malformed_records == {"users": 2, "profiles": 1, "contents": 1}

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    report = send_file(
        result.users_path,
        rejected_path=result.rejected_path,
        malformed_path=result.malformed_path,
        state=state,
        hook=FakeInsiderHook(),
        run_id="r1",
    )
    summary = build_summary("r1", stats, report)
    assert summary.reconciled and summary.sent == 1, summary.render()
    letters = state.dead_letters(reasons=["malformed_source_record"])
    assert len(letters) == 4  # 2 users, 1 profile, 1 content item
    by_kind = sorted(dl.user_key.split(":")[1] for dl in letters)
    assert by_kind == ["contents", "profiles", "users", "users"]
    content_letter = next(dl for dl in letters if dl.user_key.startswith("malformed:contents:"))
    assert content_letter.payload["id"] == "c2" and "without user.id" in content_letter.detail
    assert {dl.payload.get("external_id") for dl in letters if ":users:" in dl.user_key} == {"lost", "blank"}

    # a retried send does not add them twice
    send_file(result.users_path, rejected_path=result.rejected_path, malformed_path=result.malformed_path,
              state=state, hook=FakeInsiderHook(), run_id="r1")  # fmt: skip
    assert len(state.dead_letters(reasons=["malformed_source_record"])) == 4


def test_a_fetch_without_malformed_records_writes_an_empty_file(fetched, tmp_path):
    result = transform_run(fetched(), start=START, end=END, out_dir=tmp_path / "t")
    assert result.malformed_path.read_text() == "" and result.stats.malformed_records == {}
