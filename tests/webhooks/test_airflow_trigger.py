"""The receiver inside a real Airflow API server app (SQLite metadata DB, the project's dags/ and
plugins/): mounted at /creator-sync, the secret read from the insightiq_default connection, and a signed
event becoming a QUEUED creator_sync run with conf {"account_ids": [...]} (no scheduler involved)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, time
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from creator_sync.webhooks.signature import sign
from creator_sync.webhooks.trigger import AirflowSyncTrigger

out = {}
client = TestClient(create_app())
out["health"] = client.get("/creator-sync/health").status_code
body = json.dumps({"id": "e-1", "event": "PROFILES.UPDATED", "data": {"account_id": "acc-1"}}).encode()
headers = {"Webhook-Signatures": sign(body, "sandbox-client-secret"), "Content-Type": "application/json"}
out["forged"] = client.post("/creator-sync/webhooks/insightiq", content=body,
                            headers={"Webhook-Signatures": sign(body, "wrong")}).status_code
out["accepted"] = client.post("/creator-sync/webhooks/insightiq", content=body, headers=headers).json()
deadline = time.monotonic() + 30
runs = []
while time.monotonic() < deadline and not runs:
    time.sleep(0.2)
    with create_session() as s:
        runs = [(r.run_id, r.state, r.conf) for r in s.query(DagRun).filter_by(dag_id="creator_sync")]
out["runs"] = runs
trigger = AirflowSyncTrigger()
out["extend_queued"] = trigger.extend_queued(runs[0][0], ["acc-2"])
with create_session() as s:
    run = s.query(DagRun).filter_by(run_id=runs[0][0]).one()
    out["conf_after_extend"] = run.conf
    run.state = "running"
out["extend_running"] = trigger.extend_queued(runs[0][0], ["acc-3"])
out["retrigger_same_id"] = trigger.trigger(runs[0][0], ["acc-1"])
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_signed_event_queues_a_targeted_creator_sync_run(tmp_path):
    from devtools.airflow_stack import migrated_sqlite_template
    from devtools.connections import connection_envs

    env = {
        **os.environ,
        **connection_envs(),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CREATOR_SYNC_DATA_URL": f"file://{tmp_path / 'data'}",
        "CREATOR_SYNC_WEBHOOK_DEBOUNCE_S": "0",
    }
    env.pop("CREATOR_SYNC_STATE_URL", None)
    airflow = str(Path(sys.executable).parent / "airflow")
    (tmp_path / "airflow").mkdir()
    shutil.copyfile(migrated_sqlite_template(env), tmp_path / "airflow" / "airflow.db")  # db migrate done
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["health"] == 200
    assert out["forged"] == 401
    assert out["accepted"]["status"] == "queued"
    [(run_id, state, conf)] = out["runs"]
    assert run_id.startswith("insightiq_webhook__")
    assert state == "queued"
    assert conf == {"account_ids": ["acc-1"]}
    assert out["extend_queued"] is True
    assert out["conf_after_extend"] == {"account_ids": ["acc-1", "acc-2"]}
    assert out["extend_running"] is False
    assert out["retrigger_same_id"] == run_id
