"""The income sweep's transactions (an incremental run's `transactions_sweep` files) keep their events over
the sweep's window, not only the run's; without that window the transform refuses them instead of dropping
them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from creator_sync.pipeline.sources import SWEEP_TRANSACTIONS, discover_inputs
from creator_sync.pipeline.transform import transform_run

from .factories import END, START, transaction, write_resource

SWEEP_FROM = END - timedelta(days=7)


def sweep_inputs(fetched, tmp_path):
    fetched()  # writes the run's files under tmp_path/fetch
    sweep = [
        transaction("t3", "u1", (START - timedelta(days=3)).isoformat()),  # in the sweep's week
        transaction("t4", "u1", (SWEEP_FROM - timedelta(days=2)).isoformat()),  # before it
    ]
    write_resource(tmp_path / "fetch" / SWEEP_TRANSACTIONS / "shard-0.parquet", sweep)
    return discover_inputs(tmp_path / "fetch")


def transaction_ids(path) -> set[str]:
    users = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {
        e["event_params"]["custom"]["transaction_id"]
        for u in users
        for e in u.get("events", [])
        if "transaction_id" in e["event_params"].get("custom", {})
    }


def test_sweep_files_are_their_own_input(fetched, tmp_path):
    inputs = sweep_inputs(fetched, tmp_path)
    assert [p.parent.name for p in inputs[SWEEP_TRANSACTIONS]] == [SWEEP_TRANSACTIONS]
    assert all(p.parent.name == "transactions" for p in inputs["transactions"])


def test_sweep_events_are_kept_over_the_sweeps_window(fetched, tmp_path):
    inputs = sweep_inputs(fetched, tmp_path)
    result = transform_run(inputs, start=START, end=END, out_dir=tmp_path / "out", sweep_from=SWEEP_FROM)
    # t1: the run's own transaction; t3: the sweep's, days before the run's window; t2 and t4: outside both
    assert transaction_ids(result.users_path) == {"t1", "t3"}
    assert result.stats.rows_read[SWEEP_TRANSACTIONS] == 2


def test_sweep_files_without_the_sweeps_window_are_refused(fetched, tmp_path):
    inputs = sweep_inputs(fetched, tmp_path)
    with pytest.raises(ValueError, match="sweep_from"):
        transform_run(inputs, start=START, end=END, out_dir=tmp_path / "out")
