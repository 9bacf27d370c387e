"""Pass 2's per-user event grouping against a straightforward reference (Acero group_by + sort_by)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from creator_sync.pipeline.events import SPOOL_SCHEMA
from creator_sync.pipeline.transform import TransformStats, _bucket_events, _lines


def reference(events: pa.Table, creators: pd.Index) -> tuple[dict, TransformStats]:
    stats = TransformStats()
    known = pc.is_in(events["uuid"], value_set=pa.array(creators.astype(object), pa.string()))
    kept = events.filter(known)
    stats.orphan_events = len(events) - len(kept)
    kept = kept.append_column("row", pa.array(np.arange(len(kept), dtype=np.int64)))
    last = kept.group_by(["uuid", "event_name", "item_id"], use_threads=False).aggregate([("row", "max")])
    stats.duplicate_events = len(kept) - len(last)
    kept = kept.take(last["row_max"]).sort_by(
        [("uuid", "ascending"), ("ts", "ascending"), ("event_name", "ascending"), ("item_id", "ascending")]
    )
    grouped = kept.group_by("uuid", use_threads=False).aggregate(
        [("event_json", "list"), ("reason", "first")]
    )
    out = {}
    for uuid, items, reason in zip(
        grouped["uuid"].to_pylist(),
        grouped["event_json_list"].to_pylist(),
        grouped["reason_first"].to_pylist(),
        strict=True,
    ):
        out[uuid] = (",".join(items), len(items), reason)
    return out, stats


def spool(rng: random.Random, n: int) -> pa.Table:
    users = [f"u{i}" for i in range(12)] + ["ü-1", "orphan"]
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        uuid = rng.choice(users)
        name = rng.choice(["content_published", "income_received"])
        item = rng.choice([f"c{j}" for j in range(n // 3 + 1)] + [""])  # duplicates on purpose
        ts = t0 + timedelta(seconds=rng.choice([0, 1, 2, 3600]))  # ties on purpose
        reason = rng.choice([None] * 8 + ["invalid_event_timestamp", "purchase_missing_params"])
        rows.append((uuid, ts, name, item, f'{{"n":{i},"i":"{item}"}}', reason))
    return pa.Table.from_pylist([dict(zip(SPOOL_SCHEMA.names, r, strict=True)) for r in rows], SPOOL_SCHEMA)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("combined_key", [True, False])
def test_bucket_events_matches_group_by_reference(seed, combined_key, monkeypatch):
    if not combined_key:
        monkeypatch.setattr("creator_sync.pipeline.transform._MAX_SORT_KEY", 0)  # the np.lexsort path
    rng = random.Random(seed)
    events = spool(rng, rng.choice([0, 1, 5, 40, 300]))
    creators = pd.Index([*sorted(f"u{i}" for i in range(14)), "ü-1"], dtype="str")
    expected, expected_stats = reference(events, creators)
    stats = TransformStats()
    per_user = _bucket_events(events, creators, stats)
    got = {
        u: (j, int(c), r)
        for u, j, c, r in zip(
            per_user.uuid.to_pylist(),
            per_user.events_json.to_pylist(),
            per_user.events,
            per_user.reason.to_pylist(),
            strict=True,
        )
    }
    assert got == expected
    assert per_user.uuid.to_pylist() == sorted(expected)
    assert (stats.orphan_events, stats.duplicate_events) == (
        expected_stats.orphan_events,
        expected_stats.duplicate_events,
    )
    heads = pa.array([f'{{"identifiers":{{"uuid":"{u}"}}}}' for u in creators])
    lines, counts, reasons = _lines(heads, pa.array(creators.astype(object), pa.string()), per_user)
    for uuid, head, line, count, reason in zip(
        creators, heads.to_pylist(), lines.to_pylist(), counts, reasons.to_pylist(), strict=True
    ):
        if uuid in expected:
            assert line == head[:-1] + ',"events":[' + expected[uuid][0] + "]}\n"
            assert (count, reason) == expected[uuid][1:]
        else:
            assert (line, count, reason) == (head + "\n", 0, None)
