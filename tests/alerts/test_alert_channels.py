"""The webhook channel and the Deadline Alert callback: Airflow's own CallbackTrigger (what the triggerer runs
for a missed deadline) constructs the notifier with the deadline context and awaits it; the message is
POSTed to a local HTTP server standing in for a Slack incoming webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from creator_sync.alerts import CreatorSyncAlert

SECRET_PATH = "services/T000/B000/not-a-real-secret"


class Webhook:
    def __init__(self, status: int = 200) -> None:
        self.status, self.requests = status, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((self.path, json.loads(body)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    hook = Webhook()
    monkeypatch.setenv(
        "AIRFLOW_CONN_CS_WEBHOOK",
        json.dumps({"conn_type": "http", "host": hook.url, "password": SECRET_PATH}),
    )
    yield hook
    hook.close()


DEADLINE_CONTEXT = {
    "dag_run": {
        "dag_id": "creator_sync",
        "dag_run_id": "scheduled__2026-12-01T10:00:00+00:00",
        "state": "running",
        "queued_at": "2026-12-01T11:00:02Z",
    },
    "deadline": {"id": "d1", "deadline_time": "2026-12-01T12:00:02Z"},
}


def test_a_missed_deadline_runs_through_airflows_callback_trigger_to_the_webhook(webhook):
    from airflow.triggers.callback import CallbackTrigger

    from creator_sync.dag_defaults import run_deadline

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREATOR_SYNC_ALERT_CONN_ID", "cs_webhook")
        deadline = run_deadline("0 * * * *")
    assert deadline.interval.total_seconds() == 3600
    kwargs = {**deadline.callback.kwargs, "context": DEADLINE_CONTEXT}
    trigger = CallbackTrigger(deadline.callback.path, kwargs)

    async def events():
        return [event.payload async for event in trigger.run()]

    payloads = asyncio.run(events())
    assert payloads[-1]["state"] == "success", payloads
    [(path, body)] = webhook.requests
    assert path == f"/{SECRET_PATH}"
    assert body["text"].startswith(
        "[creator-sync] creator_sync run scheduled__2026-12-01T10:00:00+00:00 outlived its interval"
    )
    assert "Deadline: 2026-12-01T12:00:02Z" in body["text"]


def test_a_failing_webhook_raises_without_its_secret_url(webhook):
    webhook.status = 500
    alert = CreatorSyncAlert("cs_webhook")
    with pytest.raises(RuntimeError, match="answered HTTP 500") as err:
        alert.notify({"dag_run": {"dag_id": "d", "run_id": "r"}})
    assert "not-a-real-secret" not in str(err.value)


def test_no_connection_setting_means_no_alert(webhook, monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_ALERT_CONN_ID", raising=False)
    CreatorSyncAlert().notify({"dag_run": {"dag_id": "d", "run_id": "r"}})
    assert webhook.requests == []


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"conn_type": "postgres", "host": "db"}, "alerts need an smtp connection"),
        ({"conn_type": "smtp", "host": "127.0.0.1", "port": 1}, "names no recipient"),
    ],
)
def test_a_connection_that_cannot_alert_says_what_to_fix(monkeypatch, conn, message):
    monkeypatch.setenv("AIRFLOW_CONN_CS_BAD_ALERTS", json.dumps(conn))
    with pytest.raises(ValueError, match=message):
        CreatorSyncAlert("cs_bad_alerts").notify({"dag_run": {"dag_id": "d", "run_id": "r"}})
