"""The embedded Airflow (`make demo`, e2e tests, benchmarks) shares one SQLite file between the scheduler,
the api-server and CLI calls. A CLI write that meets a busy database must wait, not fail; one that SQLite
refuses at once ("database is locked" on a read-to-write upgrade) is retried."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devtools.airflow_stack import AirflowStack

pytestmark = pytest.mark.slow


def test_cli_write_waits_for_a_lock_longer_than_sqlites_default_busy_timeout(tmp_path):
    stack = AirflowStack(tmp_path / "airflow")
    stack.home.mkdir(parents=True)
    stack.prepare_db()

    locked, released = threading.Event(), threading.Event()

    def hold_write_lock(seconds: float) -> None:
        db = sqlite3.connect(stack.home / "airflow.db", isolation_level=None)
        db.execute("BEGIN IMMEDIATE")  # the write lock a busy scheduler transaction holds
        locked.set()
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()
        released.set()

    holder = threading.Thread(target=hold_write_lock, args=(20.0,))  # CLI start-up ~5 s + over 5 s
    holder.start()
    assert locked.wait(10)
    started = time.monotonic()
    result = stack.airflow("pools", "set", "lock_probe", "1", "waits for the lock", check=False)
    waited = time.monotonic() - started
    holder.join()

    assert result.returncode == 0, result.stderr[-2000:]
    assert released.is_set() and waited >= 12
    db = sqlite3.connect(stack.home / "airflow.db")  # the write landed (read without a second CLI start-up)
    pools = db.execute("SELECT pool FROM slot_pool WHERE pool = 'lock_probe'").fetchall()
    db.close()
    assert pools == [("lock_probe",)]


def test_cli_writes_are_retried_only_while_sqlite_says_locked(monkeypatch):
    stack = AirflowStack(Path("/nonexistent"))
    answers = [(1, "sqlite3.OperationalError: database is locked"), (1, "database is locked"), (0, "created")]
    calls = []

    def fake_airflow(*args, check=True):
        calls.append(args)
        code, err = answers[len(calls) - 1]
        return subprocess.CompletedProcess(args, code, "", err)

    monkeypatch.setattr(stack, "airflow", fake_airflow)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    assert stack.airflow_write("backfill", "create").returncode == 0 and len(calls) == 3

    calls.clear()
    answers[:] = [(1, "DagNotFound: no such dag"), (0, "never reached")]
    assert stack.airflow_write("backfill", "create").returncode == 1 and len(calls) == 1  # other errors: once
