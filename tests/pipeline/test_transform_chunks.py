"""The transform by chunks of user ids: the same files whatever the chunk sizes; only mapped columns read."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from creator_sync.pipeline import transform
from creator_sync.pipeline.creators import source_columns
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run

from .factories import END, START, content, profile, transaction, write_resource

OUTPUTS = ("users.jsonl", "rejected.jsonl", "malformed.jsonl")


@pytest.fixture
def fleet(tmp_path):
    """40 creators over two pages per resource: one or two accounts each, contents and income in and
    outside the interval, creators rejected for their identifiers, records without their user id, an
    unused column that differs between pages, and a creator known only from a profile."""
    root = tmp_path / "fetch"
    users, profiles, accounts, contents, income = [], [], [], [], []
    for i in range(40):
        uid = f"user-{(i * 7919) % 1000:03d}-{i}"  # ids not in creation order
        users.append({"id": uid, "name": f"n{i}", "external_id": f"ext-{i}" if i % 3 else None})
        for a in range(1 + i % 2):
            acc = f"acc-{i}-{a}"
            platform = ["Instagram", "YouTube", "TikTok"][(i + a) % 3]
            email = [{"type": "WORK", "email_id": f"c{i}@example.com" if i % 5 else "broken"}]
            profiles.append(
                profile(uid, acc, platform, f"2024-04-{10 + a:02d}T00:00:00Z", first_name=f"F{i}{a}",
                        country="gb", language="EN", emails=email, bio=f"bio {i}")
            )  # fmt: skip
            accounts.append({"id": acc, "user": {"id": uid}, "work_platform": {"name": platform}})
            for k in range(3):
                day = "2024-05-01" if k < 2 else "2024-04-29"
                contents.append(content(f"c-{acc}-{k}", uid, f"{day}T{k + 1:02d}:00:00Z", platform=platform))
        income.append(transaction(f"t-{i}", uid, "2024-05-01T06:00:00Z"))
    profiles.append(profile("profile-only", "acc-x", "Instagram", "2024-04-01T00:00:00Z", first_name="P",
                            emails=[{"type": "WORK", "email_id": "p@example.com"}]))  # fmt: skip
    users.append({"id": "  ", "name": "no id"})
    profiles.append({"id": "p-orphan", "user": {"id": None}, "full_name": "No One"})
    accounts.append({"id": "acc-orphan", "user": {"id": ""}})
    contents.append(content("c-orphan", "nobody", "2024-05-01T01:00:00Z"))

    def pages(name, rows):
        half = len(rows) // 2
        return [
            write_resource(root / name / "part-0.parquet", rows[:half]),
            write_resource(root / name / "part-1.parquet", rows[half:]),
        ]

    for row in profiles[len(profiles) // 2 :]:
        row.pop("bio", None)  # the second page lacks a column the mapping does not use
    return {
        "users": pages("users", users),
        "profiles": pages("profiles", profiles),
        "accounts": pages("accounts", accounts),
        "contents": pages("contents", contents),
        "transactions": pages("transactions", income),
    }


def run(inputs, out, **kwargs):
    return transform_run(inputs, start=START, end=END, out_dir=out, **kwargs)


def assert_same_files(a, b):
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert pq.read_table(a / "user_hashes.parquet").equals(pq.read_table(b / "user_hashes.parquet"))


def test_chunked_by_user_ids_gives_the_one_chunk_output(fleet, tmp_path):
    one = run(fleet, tmp_path / "one", buckets=1)
    many = run(fleet, tmp_path / "many", buckets=9)
    assert one.stats.buckets == 1 and many.stats.buckets == 9
    assert_same_files(tmp_path / "one", tmp_path / "many")
    keep = {"buckets", "chunks"}
    assert {k: v for k, v in vars(one.stats).items() if k not in keep} == {
        k: v for k, v in vars(many.stats).items() if k not in keep
    }
    assert one.stats.users_written > 20 and one.stats.rejected and one.stats.malformed_records
    lines = (tmp_path / "one" / "users.jsonl").read_text().splitlines()
    uuids = [line.split('"uuid":"', 1)[1].split('"', 1)[0] for line in lines]
    assert uuids == sorted(uuids)  # user id order, whatever the buckets


def test_a_small_chunk_size_gives_the_same_users_jsonl_as_a_large_one(fleet, tmp_path):
    run(fleet, tmp_path / "large", chunk_rows=1_000_000, creator_rows=1_000_000)
    small = run(fleet, tmp_path / "small", chunk_rows=3, creator_rows=5)
    assert small.stats.buckets > 10
    assert_same_files(tmp_path / "large", tmp_path / "small")


def test_only_the_columns_the_mapping_uses_are_read(fleet, tmp_path, monkeypatch):
    read: dict[str, set[str]] = {}
    real = transform.iter_tables

    def spy(paths, schema, chunk_rows):
        for path, table in real(paths, schema, chunk_rows):
            read.setdefault(path.parent.name, set()).update(table.column_names)
            yield path, table

    monkeypatch.setattr(transform, "iter_tables", spy)
    run(fleet, tmp_path / "out")
    used = source_columns(load_mapping())
    assert set(read) == {"users", "profiles", "accounts"}
    assert all(read[r] <= set(used[r]) for r in read)
    assert "bio" not in read["profiles"] and "full_name" in read["profiles"]


def test_bucket_ranges_keep_every_id_in_one_ordered_bucket():
    ranges = transform._Ranges(["b", "d"])
    got = ranges.of(pa.array(["a", "b", "c", "d", "e", "b"]))
    assert got.tolist() == [0, 1, 1, 2, 2, 1]
    assert transform._Ranges([]).of(pa.array(["x", "y"])).tolist() == [0, 0]


def test_pages_whose_column_types_differ_are_read_as_one_resource(tmp_path):
    root = tmp_path / "fetch"
    users = [
        write_resource(root / "users" / "p0.parquet", [{"id": 101, "name": "n", "external_id": 7}]),
        write_resource(root / "users" / "p1.parquet", [{"id": "u-2", "name": "m", "external_id": "x-2"}]),
    ]
    email = [{"type": "WORK", "email_id": "a@example.com"}]
    profiles = [
        write_resource(
            root / "profiles" / f"p{i}.parquet",
            [profile(u, f"a{i}", "Instagram", "2024-04-01", emails=email)],
        )
        for i, u in enumerate(["101", "u-2"])
    ]
    result = run({"users": users, "profiles": profiles}, tmp_path / "out", buckets=2)
    lines = (tmp_path / "out" / "users.jsonl").read_text().splitlines()
    assert result.stats.users_written == 2 and '"uuid":"101"' in lines[0] and '"uuid":"u-2"' in lines[1]
    assert '"insightiq_external_id":"7"' in lines[0]
