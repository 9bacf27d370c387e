"""The report task names where the report is in the Airflow UI (the run note cannot be set by a task)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace

from creator_sync.sync import steps


def test_task_log_links_the_runs_report_in_the_view(caplog, monkeypatch):
    from airflow.sdk import BaseHook

    def no_connection(conn_id):
        raise LookupError(conn_id)

    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(no_connection))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    caplog.set_level(logging.INFO, steps.log.name)
    run = SimpleNamespace(run_id="manual__2026-12-01T08:00:00+00:00", start=datetime(2026, 12, 1, tzinfo=UTC))
    steps._set_run_note(run, "report text")
    assert (
        "https://airflow.example.com/team-a/creator-sync-ui/runs/creator_sync/"
        "manual__2026-12-01T08%3A00%3A00%2B00%3A00" in caplog.text
    )
    assert "report text" not in caplog.text
