"""Run files on object storage: CREATOR_SYNC_DATA_URL=s3://bucket/prefix through Airflow's ObjectStoragePath
and the Amazon provider, against a real S3 API server on 127.0.0.1
(moto's server mode, devtools/s3_server.py).

A run's fetch, transform, send and report steps write and read every file on S3 (the transform stages its
inputs locally and uploads its outputs); nothing lands in the local data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from creator_sync import storage
from creator_sync.errors import CreatorSyncConfigError
from creator_sync.sync.run_context import SyncRun, run_dir, run_dir_name
from devtools.s3_server import MotoS3Server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget")]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# what matters here is where the files land, not the 10/s limit
SANDBOX_RATE = 200

BUCKET, PREFIX, CONN_ID = "creator-sync-test", "data", "creator_sync_s3"


@pytest.fixture(scope="module")
def s3_server():
    with MotoS3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def s3_data(s3_server, monkeypatch, tmp_path):
    """The data directory on S3 (the connection named by CREATOR_SYNC_DATA_CONN_ID), state in SQLite."""
    for key, value in s3_server.connection_env(CONN_ID).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"s3://{BUCKET}/{PREFIX}")
    monkeypatch.setenv("CREATOR_SYNC_DATA_CONN_ID", CONN_ID)
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    return s3_server


def make_run(run_id: str) -> SyncRun:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return SyncRun(run_id, end - timedelta(days=1), end, False, False, ())


def test_a_run_writes_and_reads_all_its_files_on_s3(s3_data, sandbox_env, tmp_path):
    from creator_sync.hooks.insightiq import InsightIQHook
    from creator_sync.operators import InsiderUpsertOperator
    from creator_sync.sync import fetch
    from creator_sync.sync.steps import report_step, transform_step

    run = make_run("manual__2026-05-01T00:00:00+00:00 s3")
    assert run.dir.protocol == "s3" and str(run.dir).startswith(f"s3://{CONN_ID}@{BUCKET}/{PREFIX}/runs/")

    creators = fetch.fetch_directory(InsightIQHook(), run)
    contents = fetch.fetch_contents(InsightIQHook(), run)
    shards = [fetch.fetch_account_shard(InsightIQHook(), run, k, 2) for k in range(2)]
    transformed = transform_step(run)
    assert transformed["users_path"].startswith(f"s3://{CONN_ID}@{BUCKET}/"), transformed
    upsert = InsiderUpsertOperator(
        task_id="upsert",
        users_path=transformed["users_path"],
        rejected_path=transformed["rejected_path"],
        malformed_path=transformed["malformed_path"],
        skip_hook=run.skip_hook,
        dry_run=run.dry_run,
        run_id=run.run_id,
    )
    sent = upsert.execute(context={"ti": SimpleNamespace(task_id="upsert", map_index=-1, try_number=1)})
    report = report_step(run, transformed, sent)
    assert contents["count"] >= 0 and len(shards) == 2

    prefix = f"{PREFIX}/runs/{run_dir_name(run.run_id)}/"
    keys = {key.removeprefix(prefix) for key in s3_data.keys(BUCKET, prefix)}
    for name in (
        "fetch/users/users.parquet",
        "fetch/profiles/profiles.parquet",
        "fetch/contents/contents.parquet",
        "fetch/accounts/shard-0.parquet",
        "fetch/accounts/shard-1.parquet",
        "transform/users.jsonl",
        "transform/rejected.jsonl",
        "transform/transform_stats.json",
        "report.md",
    ):
        assert name in keys, sorted(keys)
    assert not any("_spool" in key for key in keys), sorted(keys)  # the transform's scratch stays local
    assert not (tmp_path / "home" / "data").exists()  # nothing in the local data directory

    # what was read back from S3 is what was sent: the sandbox stored every valid creator once
    insider = sandbox_env.stats("insider")
    assert report["reconciled"], report["text"]
    assert report["fetched_creators"] == creators["users"]["count"] > 0
    assert insider["users_stored"] == report["sent"] == transformed["users"], (insider, report)
    assert insider["duplicate_events"] == 0, insider
    stats = json.loads(storage.as_path(transformed["stats_path"]).read_text())
    assert stats["users_written"] == transformed["users"]
    assert "Reconciliation holds" in (run.dir / "report.md").read_text()


def test_a_bucket_that_does_not_exist_is_a_clear_error_and_is_not_created(s3_data, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", "s3://no-such-bucket/creator-sync")
    with pytest.raises(
        CreatorSyncConfigError, match=r"bucket 'no-such-bucket' does not exist.*Create the bucket"
    ):
        run_dir("manual__missing")
    assert "no-such-bucket" not in {b["Name"] for b in s3_data.client().list_buckets()["Buckets"]}


def test_without_the_bucket_check_the_filesystem_would_create_the_bucket(s3_data, monkeypatch):
    """The guard above matters: s3fs's mkdir creates a missing bucket, so a typo in the URL would silently
    put run files into a new bucket."""
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", "s3://typo-bucket/creator-sync")
    monkeypatch.setattr(storage, "_checked_bucket", lambda url: None)
    (storage.data_root() / "runs" / "x").mkdir(parents=True, exist_ok=True)
    assert "typo-bucket" in {b["Name"] for b in s3_data.client().list_buckets()["Buckets"]}


def test_staged_output_uploads_only_when_the_block_succeeds(s3_data):
    base = storage.data_root() / "staging-test"
    with pytest.raises(RuntimeError), storage.staged_output(base / "failed") as local:
        (local / "half.jsonl").write_text("{}\n")
        raise RuntimeError("transform failed")
    with storage.staged_output(base / "done") as local:
        (local / "sub").mkdir()
        (local / "sub" / "ok.json").write_text('{"ok": true}')
    keys = s3_data.keys(BUCKET, f"{PREFIX}/staging-test/")
    assert keys == [f"{PREFIX}/staging-test/done/sub/ok.json"], keys
    with storage.staged_input(base / "done") as local:
        assert json.loads((local / "sub" / "ok.json").read_text()) == {"ok": True}
    assert storage.tree_size(base) == (1, len('{"ok": true}'))
    storage.remove_tree(base, parent=storage.data_root())
    assert s3_data.keys(BUCKET, f"{PREFIX}/staging-test/") == []


def test_retention_deletes_old_run_directories_on_s3(s3_data):
    from creator_sync.retention import Freed, purge_run_files

    root = storage.data_root()
    for run in ("scheduled__a", "scheduled__b"):
        (root / "runs" / run / "fetch" / "users.parquet").write_bytes(b"x" * 10)
    now = datetime.now(UTC)
    kept = Freed()
    purge_run_files(root, now - timedelta(days=1), kept)  # written just now: younger than the cut-off
    assert kept.run_dirs == [] and s3_data.keys(BUCKET, f"{PREFIX}/runs/scheduled__a/")
    freed = Freed()
    purge_run_files(root, now + timedelta(days=1), freed)
    assert {"scheduled__a", "scheduled__b"} <= set(freed.run_dirs)
    assert s3_data.keys(BUCKET, f"{PREFIX}/runs/scheduled__a/") == []
    assert s3_data.keys(BUCKET, f"{PREFIX}/runs/scheduled__b/") == []


def test_the_directory_snapshot_on_s3_is_read_only_once_complete(s3_data, monkeypatch):
    from creator_sync.files import flatten_records
    from creator_sync.sync import snapshot
    from creator_sync.sync.snapshot import SnapshotStore

    def parts(followers: int) -> dict:
        return {
            "users": flatten_records([{"id": "u1"}, {"id": "u2"}]),
            "profiles": flatten_records(
                [{"id": f"p{i}", "user": {"id": f"u{i}"}, "followers": followers} for i in (1, 2)]
            ),
            "accounts": flatten_records([{"id": "a1", "user": {"id": "u1"}, "data.income.status": "SYNCED"}]),
        }

    store = SnapshotStore()
    assert store.root.protocol == "s3"
    now = datetime(2026, 5, 1, tzinfo=UTC)
    first = store.write("scheduled__1", None, parts(1), now=now, full_read=snapshot.PARTS)
    assert store.current() == first and first.income_accounts == ("a1",)

    real = snapshot.pq.ParquetWriter
    calls = []

    def failing(where, schema, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("connection reset")
        return real(where, schema, *args, **kwargs)

    monkeypatch.setattr(snapshot.pq, "ParquetWriter", failing)
    with pytest.raises(OSError):
        store.write("scheduled__2", first, parts(2), now=now)
    monkeypatch.setattr(snapshot.pq, "ParquetWriter", real)
    assert len(store.versions()) == 2  # the half-written version's objects exist ...
    assert store.current() == first  # ... and are not read
    assert store.read(first, "profiles")["followers"].to_pylist() == [1, 1]

    second = store.write("scheduled__3", first, parts(3), now=now)
    assert store.current() == second and set(store.versions()) == {first.version, second.version}
    assert store.base_for("scheduled__3") == first

    # a run's merge streams the stored version from S3 batch by batch
    new = parts(4)
    streams = {part: store.merged(second, part, new[part], batch_rows=1) for part in snapshot.PARTS}
    fourth = store.write("scheduled__4", second, streams, now=now)
    assert store.read(fourth, "profiles")["followers"].to_pylist() == [4, 4]
    assert store.read(fourth, "accounts", columns=("id", "absent")).column_names == ["id"]


def test_annotate_rewrites_an_accounts_file_on_s3_batch_by_batch(s3_data):
    """account_status.annotate reads an S3 object batch by batch while it writes it again (the upload
    completes when the last batch is written): each row gets its own account's columns, in file order."""
    import pyarrow.parquet as pq

    from creator_sync import files
    from creator_sync.sync import account_status

    path = storage.data_root() / "runs" / "annotate" / "accounts.parquet"
    records = [
        {"id": f"a{i}", "status": "CONNECTED", "created_at": f"2026-01-0{i + 1}T00:00:00Z"} for i in range(7)
    ]
    files.write_records_parquet(records, path)
    with path.open("rb") as fh:
        derived = account_status.derive(None, pq.read_table(fh), (datetime.now(UTC), datetime.now(UTC)))
    assert account_status.annotate([path], derived.take(list(range(6, -1, -1))), batch_rows=2) == 1
    with path.open("rb") as fh:
        table = pq.read_table(fh)
    assert table["id"].to_pylist() == [r["id"] for r in records]
    names = list(account_status.DERIVED)
    assert table.select(names).equals(derived.select(names))
    assert table[account_status.SINCE].null_count == 0
