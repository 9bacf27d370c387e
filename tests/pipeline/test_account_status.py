"""Account events from the status change seen between two reads of an account
(creator_sync.sync.account_status): the moment is fixed when the change is first seen, so the event is built
once; a reconnect is a new event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from creator_sync.pipeline import events as ev
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run
from creator_sync.sync import account_status

from .factories import profile, write_resource

H = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a run's interval [H, H + 1h)


def account(status: str, updated: datetime, created: datetime | None = None, account_id: str = "a1") -> dict:
    return {
        "id": account_id,
        "user.id": "u1",
        "work_platform.name": "YouTube",
        "status": status,
        "platform_username": "u1_yt",
        "disconnection_source": None if status == "CONNECTED" else "USER",
        "created_at": (created or H - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S.%f"),
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def table(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows))


def run(base, *rows, start=H):
    derived = account_status.derive(base, table(*rows), (start, start + timedelta(hours=1)))
    return derived.to_pylist()


def test_the_first_read_dates_connections_at_creation_and_sends_no_old_news():
    got = run(
        None, account("CONNECTED", H - timedelta(days=1)), account("NOT_CONNECTED", H - timedelta(days=2))
    )
    assert got[0]["status_since.connected"] == at("2025-12-02T10:00:00")  # created_at, not clamped
    assert got[0]["status_since.not_connected"] is None
    assert got[1]["status_since.not_connected"] == at("2026-02-28T10:00:00")  # updated_at, not clamped


def test_an_unchanged_status_keeps_its_moment_though_updated_at_moves():
    first = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    got = run(first, account("CONNECTED", H + timedelta(minutes=30)))  # a sync moved updated_at
    assert got[0]["status_since.connected"] == first["status_since.connected"][0].as_py()


def test_a_change_is_dated_in_the_window_of_the_run_that_sees_it():
    base = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    inside = run(base, account("NOT_CONNECTED", H + timedelta(minutes=20)))[0]
    assert inside["status_since.not_connected"] == at("2026-03-02T10:20:00")
    assert inside["status_since.connected"] is None
    late = run(base, account("NOT_CONNECTED", H - timedelta(hours=5)))[0]  # seen by a later sweep
    assert late["status_since.not_connected"] == at("2026-03-02T10:00:00")
    early = run(base, account("SESSION_EXPIRED", H + timedelta(hours=3)))[0]  # after the window's end
    assert early["status_since.session_expired"] == at("2026-03-02T10:59:59")


def test_a_reconnect_after_a_disconnect_has_a_new_moment():
    first = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    off = table(*run(first, account("NOT_CONNECTED", H + timedelta(minutes=5))))
    later = H + timedelta(hours=1)
    on = run(off, account("CONNECTED", later + timedelta(minutes=7)), start=later)[0]
    assert on["status_since.connected"] == at("2026-03-02T11:07:00")
    assert on["status_since.connected"] != first["status_since.connected"][0].as_py()


def test_a_new_account_next_to_a_snapshot_is_a_connection_of_this_run():
    base = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    new = account("CONNECTED", H + timedelta(minutes=3), created=H + timedelta(minutes=2), account_id="a2")
    got = run(base, account("CONNECTED", H - timedelta(days=1)), new)
    assert got[1]["status_since.connected"] == at("2026-03-02T10:02:00")


def test_a_snapshot_from_before_the_status_columns_sends_no_old_news():
    legacy = table(account("CONNECTED", H - timedelta(days=1)))  # no status_since columns
    got = run(legacy, account("CONNECTED", H + timedelta(minutes=10)))[0]
    assert got["status_since.connected"] == at("2025-12-02T10:00:00")


def test_annotate_adds_the_columns_by_id_and_gives_the_same_file_again(tmp_path):
    derived = account_status.derive(
        None, table(account("CONNECTED", H), account("SESSION_EXPIRED", H, account_id="a2")), (H, H)
    )
    path = tmp_path / "shard-0.parquet"
    pq.write_table(table(account("SESSION_EXPIRED", H, account_id="a2"), account("CONNECTED", H)), path)
    assert account_status.annotate([path], derived) == 1
    once = pq.read_table(path)
    account_status.annotate([path], derived)
    assert pq.read_table(path).equals(once)
    assert once["id"].to_pylist() == ["a2", "a1"]  # the file's order
    assert once["status_since.session_expired"].to_pylist()[0] is not None
    assert once["status_since.connected"].to_pylist() == [None, derived["status_since"][0].as_py()]


def test_the_mapping_builds_each_account_event_from_its_own_column_only():
    mapping = load_mapping()
    base = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    chunk = table(*run(base, account("NOT_CONNECTED", H + timedelta(minutes=20))))
    built = {}
    for name in ("account_connected", "account_disconnected", "session_expired"):
        spec = mapping.events[name]
        kept, ts = ev.in_interval(chunk, spec, H, H + timedelta(hours=1))
        built[name] = [json.loads(e) for e in ev.build_events(kept, ts, spec)["event_json"].to_pylist()]
    assert not built["account_connected"] and not built["session_expired"]
    (event,) = built["account_disconnected"]
    assert event["timestamp"] == "2026-03-02T10:20:00Z"
    assert event["event_params"]["custom"]["platform"] == "youtube"
    assert event["event_params"]["custom"]["account_id"] == "a1"


def test_the_transform_sends_the_disconnect_once_per_window(tmp_path):
    base = table(*run(None, account("CONNECTED", H - timedelta(days=1))))
    accounts = table(*run(base, account("NOT_CONNECTED", H + timedelta(minutes=20))))
    fetch = tmp_path / "fetch"
    write_resource(fetch / "users" / "u.parquet", [{"id": "u1", "name": "U"}])
    write_resource(
        fetch / "profiles" / "p.parquet",
        [profile("u1", "a1", "YouTube", "2026-03-01T00:00:00", emails=[{"email_id": "u1@example.com"}])],
    )
    (fetch / "accounts").mkdir()
    pq.write_table(accounts, fetch / "accounts" / "a.parquet")

    def events(start):
        result = transform_run(fetch, start=start, end=start + timedelta(hours=1), out_dir=tmp_path / "out")
        lines = [json.loads(line) for line in result.users_path.read_text().splitlines()]
        return [e["event_name"] for line in lines for e in line.get("events", [])]

    assert events(H) == ["account_disconnected"]
    assert events(H + timedelta(hours=1)) == []  # the next hour's run: the moment lies before it
