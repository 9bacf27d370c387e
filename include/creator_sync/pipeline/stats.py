"""The transform's figures (transform_stats.json): what the transform counted, read back by the report.

A module of its own, without pandas or pyarrow: the report task reads the figures, and its process need
not load what the transform computes them with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from creator_sync.files import read_text


@dataclass
class TransformStats:
    fetched_creators: int = 0
    users_written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    events_written: int = 0
    events_by_name: dict[str, int] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_outside_interval: int = 0  # outside the event window [events_from, end)
    rows_early: int = 0  # ... of them before it, kept for the late-history check (early_events.parquet)
    history_reopened: int = 0  # accounts whose history a late historic item reopened (pipeline.late_history)
    rows_in_lookback: int = 0  # kept as events from before `start`: look-back or income sweep (late data)
    orphan_events: int = 0
    duplicate_events: int = 0
    chunks: int = 0
    buckets: int = 0
    malformed_records: dict[str, int] = field(default_factory=dict)  # resource -> records without their id
    offboarded: int = 0  # creators who left (creator_sync.offboard): fetched, not transformed, not sent
    clear_users: int = 0  # sent users with attributes to clear (clears.jsonl, creator_sync.pipeline.clearing)
    clear_attributes: int = 0  # ... and the attributes listed for them
    # source fields seen but unmapped / mapped fields absent from the source (creator_sync.pipeline.drift)
    schema_drift: dict[str, list[str]] = field(default_factory=dict)


def write_stats(stats: TransformStats, path: Path) -> Path:
    """transform_stats.json (load_stats reads it)."""
    path.write_text(json.dumps(asdict(stats), indent=2, sort_keys=True))
    return path


def load_stats(path: str | Path) -> TransformStats:
    return TransformStats(**json.loads(read_text(path)))
