"""Purging one creator's rows from the run files on disk."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from creator_sync.offboard.run_files import purge_run_files
from tests.pipeline.factories import profile, write_resource


def test_rows_of_the_creator_go_and_the_rest_stay(tmp_path):
    fetch = tmp_path / "runs" / "r1" / "fetch"
    write_resource(fetch / "users.parquet", [{"id": "u1", "name": "Ann"}, {"id": "u2", "name": "Bob"}])
    write_resource(
        fetch / "profiles.parquet",
        [
            profile(
                "u1", "a1", "Instagram", "2024-01-01T00:00:00Z", emails=[{"email_id": "ann@example.com"}]
            ),
            profile("u2", "a2", "Instagram", "2024-01-01T00:00:00Z"),
        ],
    )
    transform = tmp_path / "runs" / "r1" / "transform"
    transform.mkdir(parents=True)
    (transform / "users.jsonl").write_text(
        json.dumps({"identifiers": {"uuid": "u1", "email": "ann@example.com"}})
        + "\n"
        + json.dumps({"identifiers": {"uuid": "u2"}})
        + "\n"
    )
    (transform / "rejected.jsonl").write_text(
        json.dumps({"user_key": "u1", "reason": "x", "payload": {"identifiers": {"uuid": "u1"}}}) + "\n"
    )
    (tmp_path / "runs" / "r1" / "report.md").write_text("u1 is not PII here; not a run data file\n")

    assert purge_run_files(tmp_path, "u1", dry_run=True) == {"parquet_rows": 2, "jsonl_lines": 2, "files": 4}
    assert pq.read_table(fetch / "users.parquet").num_rows == 2  # dry run: untouched
    assert purge_run_files(tmp_path, "u1") == {"parquet_rows": 2, "jsonl_lines": 2, "files": 4}
    assert pq.read_table(fetch / "users.parquet").column("id").to_pylist() == ["u2"]
    assert pq.read_table(fetch / "profiles.parquet").column("user.id").to_pylist() == ["u2"]
    assert "ann@example.com" not in (transform / "users.jsonl").read_text()
    assert (transform / "users.jsonl").read_text().count("\n") == 1
    assert (transform / "rejected.jsonl").read_text() == ""
    assert not list(tmp_path.rglob("*.purge-tmp"))
    assert purge_run_files(tmp_path, "u1") == {"parquet_rows": 0, "jsonl_lines": 0, "files": 0}


def test_profile_ids_are_not_user_ids(tmp_path):
    fetch = tmp_path / "runs" / "r1" / "fetch"
    write_resource(
        fetch / "profiles.parquet", [profile("u2", "a2", "Instagram", "2024-01-01T00:00:00Z", id="u1")]
    )
    assert purge_run_files(tmp_path, "u1")["parquet_rows"] == 0
