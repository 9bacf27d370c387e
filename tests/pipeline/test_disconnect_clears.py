"""An account disconnected or deleted at InsightIQ: a targeted run of it sends
`account_disconnected` and clears the platform's attributes at Insider. An account whose GET answers 404 is
taken as disconnected (creator_sync.sync.account_status.vanished); a full read whose list lacks an
account queues it for such a run instead of deciding on the list's word."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest

from creator_sync import files
from creator_sync.http.errors import VendorNotFoundError
from creator_sync.store.webhooks import WebhookStore, make_engine
from creator_sync.sync import account_status, incremental_fetch, insightiq_reads, targeted_fetch
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore
from creator_sync.sync.steps import transform_step

from .factories import END, START, profile

EMAIL = [{"type": "WORK", "email_id": "ada@example.com"}]


def account(account_id: str, platform: str, status: str = "CONNECTED") -> dict:
    return {
        "id": account_id,
        "user": {"id": "u1"},
        "work_platform": {"name": platform},
        "status": status,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-04-01T00:00:00Z",
    }


def write_fetch(run: SyncRun, accounts: list[dict], users=(), profiles=()) -> None:
    fetched = run.dir / "fetch"
    parts = {"users": list(users), "profiles": list(profiles), "accounts": accounts, "contents": []}
    for part, records in parts.items():
        (fetched / part).mkdir(parents=True, exist_ok=True)
        files.write_records_parquet(records, fetched / part / f"{part}.parquet")


def full_read(accounts: list[dict], run_id: str = "manual__full") -> SyncRun:
    """A full read of creator u1 (Instagram a1, YouTube a2) whose directory becomes the snapshot."""
    run = SyncRun(run_id, START - timedelta(days=1), END - timedelta(days=1), False, False, (), 0, "manual")
    profiles = [
        profile("u1", "a1", "Instagram", "2024-04-01T00:00:00Z", first_name="Ada", emails=EMAIL),
        profile("u1", "a2", "YouTube", "2024-04-02T00:00:00Z", emails=EMAIL,
                reputation={"follower_count": 9000, "following_count": 1, "content_count": 40}),
    ]  # fmt: skip
    write_fetch(run, accounts, users=[{"id": "u1", "external_id": "e1"}], profiles=profiles)
    transform_step(run)
    return run


def targeted(accounts: tuple[str, ...]) -> SyncRun:
    return SyncRun("insightiq_webhook__gone", START, END, False, False, accounts, 0, "manual")


def sent(result: dict) -> tuple[dict | None, list[dict]]:
    with open(result["users_path"]) as fh:
        line = fh.readline()
    user = json.loads(line) if line else None
    with open(result["clears_path"]) as fh:
        clears = [json.loads(line) for line in fh]
    return user, clears


def test_a_deleted_account_in_a_targeted_run_is_disconnected_and_its_platform_cleared(local_sync_store):
    full_read([account("a1", "Instagram"), account("a2", "YouTube")])
    run = targeted(("a2",))
    write_fetch(run, [])  # GET /v1/accounts/a2 answered 404: the run wrote nothing for it
    user, clears = sent(transform_step(run))
    (clear,) = clears
    assert clear["identifiers"] == {"uuid": "u1"}
    assert "youtube_follower_count" in clear["custom"]["whole"]
    assert all(name.startswith("youtube_") for name in clear["custom"]["whole"])
    assert "youtube_follower_count" not in user["attributes"]["custom"]
    assert user["attributes"]["custom"]["instagram_follower_count"] == 100  # the other account stays
    assert user["attributes"]["custom"]["connected_platforms"] == ["instagram"]
    events = [e for e in user["events"] if e["event_name"] == "account_disconnected"]
    assert [e["event_params"]["custom"]["account_id"] for e in events] == ["a2"]
    snapshot = SnapshotStore()
    rows = snapshot.read(snapshot.current(), "accounts").to_pylist()
    assert {r["id"]: r["status"] for r in rows} == {"a1": "CONNECTED", "a2": "NOT_CONNECTED"}


def test_without_taking_the_deleted_account_as_disconnected_nothing_is_cleared(local_sync_store, monkeypatch):
    """The guard switched off: the same run neither clears YouTube nor sends account_disconnected (it has no
    creator at all: its only account's GET answered 404)."""
    monkeypatch.setattr(account_status, "vanished", lambda base, read, asked: None)
    full_read([account("a1", "Instagram"), account("a2", "YouTube")])
    run = targeted(("a2",))
    write_fetch(run, [])
    user, clears = sent(transform_step(run))
    assert clears == []
    assert user is None


def test_a_disconnected_account_read_by_its_targeted_run_is_cleared_and_sent_once(local_sync_store):
    full_read([account("a1", "Instagram"), account("a2", "YouTube")])
    run = targeted(("a2",))
    write_fetch(run, [account("a2", "YouTube", "NOT_CONNECTED") | {"updated_at": "2024-05-01T10:00:00Z"}])
    user, clears = sent(transform_step(run))
    assert "youtube_follower_count" in clears[0]["custom"]["whole"]
    (event,) = [e for e in user["events"] if e["event_name"] == "account_disconnected"]
    assert event["timestamp"] == "2024-05-01T10:00:00Z"


def test_a_full_read_that_misses_an_account_keeps_it_and_queues_it_for_a_targeted_run(local_sync_store):
    full_read([account("a1", "Instagram"), account("a2", "YouTube")])
    second = full_read([account("a1", "Instagram")], run_id="manual__second")
    assert WebhookStore(make_engine()).pending() == ["a2"]
    snapshot = SnapshotStore()
    rows = snapshot.read(snapshot.current(), "accounts").to_pylist()
    assert {r["id"]: r["status"] for r in rows} == {"a1": "CONNECTED", "a2": "CONNECTED"}  # not decided
    clears = (second.dir / "transform" / "clears.jsonl").read_text()
    assert clears == ""  # nothing cleared on the list's word


def test_a_deleted_account_is_not_queued_again_by_later_full_reads(local_sync_store):
    full_read([account("a1", "Instagram"), account("a2", "YouTube")])
    run = targeted(("a2",))
    write_fetch(run, [])  # 404: a2 is taken as disconnected and kept as NOT_CONNECTED
    transform_step(run)
    full_read([account("a1", "Instagram")], run_id="manual__third")
    assert WebhookStore(make_engine()).pending() == []


def test_vanished_and_missing_from_pick_the_right_rows():
    base = pa.table({"id": ["a1", "a2", "a3"], "status": ["CONNECTED", "CONNECTED", "NOT_CONNECTED"]})
    read = pa.table({"id": ["a1"], "status": ["CONNECTED"]})
    assert account_status.missing_from(base, read) == ["a2", "a3"]
    assert account_status.missing_from(None, read) == []
    gone = account_status.vanished(base, read, ["a1", "a2", "zz"])
    assert gone.to_pylist() == [{"id": "a2", "status": "NOT_CONNECTED"}]
    assert account_status.vanished(base, read, ["a1"]) is None
    assert account_status.vanished(None, read, ["a2"]) is None
    assert incremental_fetch.VANISHED_FILE != incremental_fetch.OWNERS_FILE


class GoneHook:
    """InsightIQ where account `gone` is deleted: its GET and its contents list answer 404."""

    def __init__(self, gone: str) -> None:
        self.gone = gone
        self.stats: dict = {}

    def _missing(self, path: str) -> VendorNotFoundError:
        return VendorNotFoundError("not found", vendor="InsightIQ", method="GET", path=path, status=404)

    def get_record(self, resource: str, record_id: str) -> dict:
        if record_id == self.gone:
            raise self._missing(f"/v1/{resource}/{record_id}")
        return account(record_id, "Instagram")

    def iter_records(self, resource: str, **params):
        if params.get("account_id") == self.gone:
            raise self._missing(f"/v1/social/{resource}")
        return iter(())


def test_the_targeted_reads_leave_a_deleted_account_out_and_fail_on_other_errors(local_sync_store):
    hook = GoneHook("a2")
    assert [a["id"] for a in insightiq_reads.existing_accounts(hook, ["a1", "a2"])] == ["a1"]
    run = targeted(("a1", "a2"))
    assert targeted_fetch.fetch_contents(hook, run)["count"] == 0  # a2's 404: no contents, no failure
    with pytest.raises(VendorNotFoundError):  # outside a targeted run a 404 still fails the read
        list(insightiq_reads.account_contents(hook, ["a2"], "2024-05-01", "2024-05-01"))
