"""The report task names where the report is in the Airflow UI (a task cannot set its run's note)."""

from __future__ import annotations

import logging

import airflow.sdk.configuration  # noqa: F401 - loaded (it configures logging) before caplog attaches

from creator_sync.routes import links


def test_task_log_links_the_runs_report_in_the_view(caplog, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    caplog.set_level(logging.INFO, links.log.name)
    url = links.log_report_link("creator_sync", "manual__2026-12-01T08:00:00+00:00")
    assert url == (
        "https://airflow.example.com/team-a/creator-sync-ui/runs/creator_sync/"
        "manual__2026-12-01T08%3A00%3A00%2B00%3A00"
    )
    assert url in caplog.text
