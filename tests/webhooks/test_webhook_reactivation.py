"""InsightIQ deactivates a webhook after 3 failed deliveries (the sandbox does too); the registration task
notices it (InsightIQ lists `is_active`), re-enables it and alerts through the project's notifier."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.operators.webhooks import InsightIQWebhookSetupOperator
from devtools.sandbox.webhooks import DEACTIVATE_AFTER

pytestmark = pytest.mark.slow
DEAD_URL = "http://127.0.0.1:9/creator-sync/webhooks/insightiq"
EVENT = {"payload": {"event": "PROFILES.UPDATED", "name": "p", "data": {"account_id": "a", "user_id": "u"}}}


class AlertInbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                inbox.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def alerts(monkeypatch):
    inbox = AlertInbox()
    monkeypatch.setenv("AIRFLOW_CONN_CS_ALERTS", json.dumps({"conn_type": "http", "host": inbox.url}))
    monkeypatch.setenv("CREATOR_SYNC_ALERT_CONN_ID", "cs_alerts")
    yield inbox
    inbox.server.shutdown()


def register() -> dict:
    return InsightIQWebhookSetupOperator(task_id="register", url=DEAD_URL).execute(context={})


def test_a_deactivated_webhook_is_reenabled_with_an_alert(sandbox_env, alerts):
    iq = InsightIQHook()
    assert register()["action"] == "created"
    for _ in range(DEACTIVATE_AFTER):
        iq.send_mock_webhook(EVENT["payload"])
    deadline = time.monotonic() + 20
    while next(iter(iq.iter_records("webhooks")))["is_active"]:
        assert time.monotonic() < deadline, "the sandbox did not deactivate the webhook"
        time.sleep(0.2)
    assert (
        httpx.post(
            f"{sandbox_env.insightiq_url}/v1/webhooks/send",
            json=EVENT,
            auth=("sandbox-client-id", "sandbox-client-secret"),
        ).json()["webhooks"]
        == 0
    )  # nothing is delivered while deactivated

    result = register()
    assert result["action"] == "updated" and result["changed"]["reactivated"] is True
    assert next(iter(iq.iter_records("webhooks")))["is_active"] is True
    assert len(alerts.messages) == 1
    text = alerts.messages[0]["text"]
    assert "deactivated and is re-enabled" in text and result["id"] in text

    assert register()["action"] == "unchanged"  # an active webhook: no alert
    assert len(alerts.messages) == 1
