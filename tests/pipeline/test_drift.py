"""The run report's schema drift line: fields the source has and the mapping ignores, and mapped fields the
source lacks (names from the files' metadata)."""

from __future__ import annotations

from creator_sync.pipeline.drift import SHOWN, drift_line
from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.transform import TransformStats, transform_run

from .factories import END, START, profile, write_resource


def test_a_new_source_field_and_a_vanished_mapped_field_are_reported(tmp_path):
    email = [{"type": "WORK", "email_id": "a@example.com"}]
    profiles = [profile("u1", "a1", "Instagram", "2024-04-01T00:00:00Z", emails=email, loyalty_tier="gold")]
    inputs = {
        "profiles": [write_resource(tmp_path / "profiles.parquet", profiles)],
        "users": [write_resource(tmp_path / "users.parquet", [{"id": "u1", "external_id": "e"}])],
    }
    stats = transform_run(inputs, start=START, end=END, out_dir=tmp_path / "out").stats
    assert "profiles.loyalty_tier" in stats.schema_drift["unmapped"]
    assert "profiles.user.name" in stats.schema_drift["unmapped"]  # the factory's profile carries it
    assert "profiles.username" in stats.schema_drift["missing"]  # mapped (handle), not in the file
    assert not any(name.startswith("users.") for name in stats.schema_drift["missing"])  # users: all there
    assert not any(name.startswith("contents.") for name in stats.schema_drift["missing"])  # not fetched
    text = build_summary("r1", stats, SendReport(users_sent=1)).render()
    line = next(line for line in text.splitlines() if line.startswith("Schema drift:"))
    assert f"{len(stats.schema_drift['unmapped'])} source field(s) seen but unmapped: " in line
    assert f"{len(stats.schema_drift['missing'])} mapped field(s) absent: " in line


def test_the_line_lists_the_first_few_names_and_counts_the_rest():
    names = [f"profiles.f{i}" for i in range(SHOWN + 3)]
    line = drift_line({"unmapped": names, "missing": []})
    assert line == (
        f"Schema drift: {SHOWN + 3} source field(s) seen but unmapped: {', '.join(names[:SHOWN])}, ... "
        "(3 more) (docs/mapping.md says how to map a field)."
    )
    assert drift_line({"unmapped": [], "missing": []}) is None
    plain = build_summary("r1", TransformStats(fetched_creators=1), SendReport(users_sent=1)).render()
    assert "Schema drift" not in plain
