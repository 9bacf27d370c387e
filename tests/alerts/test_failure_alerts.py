"""Failure alerts by e-mail: a tiny DAG built with creator_sync.dag_defaults fails a real task (`dag.test()`
runs it through Airflow's task runner, which calls on_failure_callback with the real context), and the failure
e-mail arrives at a local SMTP server the test starts (aiosmtpd), naming the DAG, run, task and the log link.
With CREATOR_SYNC_ALERT_CONN_ID unset the same failure sends nothing."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.airflow_stack import free_port, migrated_sqlite_template

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
BASE_URL = "http://airflow.example.test:8080"
DAG_FILE = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import dag, task

    from creator_sync.dag_defaults import default_args


    @dag(
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        default_args=default_args(retries=0),
    )
    def alert_probe():
        @task
        def boom():
            raise RuntimeError("probe failure with {{ braces }}")

        boom()


    alert_probe()
    """
)
RUN = textwrap.dedent(
    """
    import sys
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    run = bag.dags["alert_probe"].test(run_after=None, logical_date=None)
    print("RUN_ID", run.run_id, run.state)
    """
)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_inbox():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A throw-away Airflow (SQLite metadata DB) with the probe DAG."""
    root = tmp_path_factory.mktemp("alerts")
    (root / "dags").mkdir()
    (root / "dags" / "alert_probe.py").write_text(DAG_FILE)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CREATOR_SYNC_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": BASE_URL,
            "CREATOR_SYNC_DATA_URL": f"file://{root / 'data'}",
        }
    )
    # the migrated DB is a copy of the session's template (`airflow db migrate` once per Airflow version)
    template_env = {k: v for k, v in env.items() if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
    shutil.copyfile(migrated_sqlite_template(template_env), root / "airflow.db")
    return root, env


def run_probe(airflow_home, extra: dict[str, str]) -> str:
    root, env = airflow_home
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(root / "dags")],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RUN_ID")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    _, run_id, state = line.split()
    assert state == "failed", line
    return run_id


def smtp_connection(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {
                "to": ["ops@example.com"],
                "from_email": "airflow@example.com",
                "disable_tls": True,
                "disable_ssl": True,
                "timeout": 10,
            },
        }
    )


def test_a_failed_task_sends_an_email_with_dag_run_task_and_log_link(airflow_home, smtp_inbox):
    inbox, port = smtp_inbox
    run_id = run_probe(
        airflow_home,
        {
            "CREATOR_SYNC_ALERT_CONN_ID": "creator_sync_alerts",
            "AIRFLOW_CONN_CREATOR_SYNC_ALERTS": smtp_connection(port),
        },
    )
    assert len(inbox.messages) == 1, [m["Subject"] for m in inbox.messages]
    message = inbox.messages[0]
    assert message["To"] == "ops@example.com" and message["From"] == "airflow@example.com"
    assert "alert_probe" in message["Subject"] and "boom" in message["Subject"], message["Subject"]
    body = message.get_body(("html", "plain")).get_content()
    assert run_id in body, body
    assert "RuntimeError: probe failure with {{ braces }}" in body, body  # text, not a template
    assert f"{BASE_URL}/dags/alert_probe/runs/" in body and "/tasks/boom" in body, body


def test_without_the_alert_connection_setting_nothing_is_sent(airflow_home, smtp_inbox):
    inbox, port = smtp_inbox
    run_probe(airflow_home, {"AIRFLOW_CONN_CREATOR_SYNC_ALERTS": smtp_connection(port)})
    assert inbox.messages == []
