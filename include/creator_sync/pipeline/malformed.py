"""InsightIQ records that lack the id the transform joins on (`users.id`, `user.id` of profiles, accounts,
contents and income transactions), and event records (contents, transactions, payouts) whose time is there
but unreadable (outside every run's interval, so no run would send them): kept as dead letters with reason
`malformed_source_record`, never silently dropped and never crashing the run.

A user record without its id is a fetched creator that cannot be sent: it goes to `rejected.jsonl` (so the
reconciliation counts it as rejected). Other records (a profile, account or event without its user) are not
creators: they go to `malformed.jsonl`, are dead-lettered by the send step and listed in the report.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creator_sync.pipeline.sources import column
from creator_sync.pipeline.validate import MALFORMED_SOURCE_RECORD

# resource -> the column holding the id the transform needs
ID_COLUMN = {"users": "id", "profiles": "user.id", "accounts": "user.id"}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def dead_letter(
    resource: str, record: dict[str, Any], missing: str, detail: str | None = None
) -> dict[str, Any]:
    """The dead-letter row for one malformed record (key: a hash of the record, so retries are idempotent)."""
    payload = _plain(record)
    text = json.dumps(payload, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {
        "user_key": f"malformed:{resource}:{digest}",
        "reason": MALFORMED_SOURCE_RECORD,
        "detail": detail
        or f"InsightIQ {resource} record without {missing}: it cannot be joined to a creator",
        "payload": json.loads(json.dumps(payload, default=str)),
    }


def unreadable_time(resource: str, record: dict[str, Any], column: str) -> dict[str, Any]:
    """The dead-letter row of an event record whose `column` (its time) is not ISO 8601."""
    value = record.get(column)
    why = f"InsightIQ {resource} record whose {column} ({value!r}) is not an ISO 8601 time: no run sends it"
    return dead_letter(resource, record, column, detail=why)


def _missing(values: pd.Series) -> pd.Series:
    text = values.astype("object").map(lambda v: v.strip() if isinstance(v, str) else v)
    return (text.isna() | (text == "")).astype(bool)


def split_frame(resource: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(records with their id, dead-letter rows of those without)."""
    if not len(frame):
        return frame, []
    id_column = ID_COLUMN[resource]
    bad = _missing(column(frame, id_column))
    if not bad.any():
        return frame, []
    letters = [dead_letter(resource, row, id_column) for row in frame[bad].to_dict(orient="records")]
    return frame[~bad].reset_index(drop=True), letters


def split_table(resource: str, table: pa.Table, user_column: str) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Event rows (contents, transactions) without their user: (kept rows, dead-letter rows)."""
    values = pc.cast(table[user_column], pa.string())
    bad = pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_trim_whitespace(values), ""))
    bad = pc.fill_null(bad, True)
    if not pc.any(bad).as_py():
        return table, []
    rows = table.filter(bad).to_pylist()
    return table.filter(pc.invert(bad)), [dead_letter(resource, row, user_column) for row in rows]
