"""`make demo` twice, then `make stop`: UI up with the four pools and three connections, one sync run
reported, and nothing left running afterwards. Uses the demo's fixed ports (8080, 8901-8903)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PORTS = (8080, 8901, 8902, 8903)

pytestmark = pytest.mark.slow


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode == 0


def live_process_groups(run_dir: Path) -> list[int]:
    return [pgid for pidfile in run_dir.glob("*.pid") if group_alive(pgid := int(pidfile.read_text()))]


@pytest.fixture
def demo_env(tmp_path):
    busy = [p for p in PORTS if port_in_use(p)]
    assert not busy, f"ports {busy} are in use: stop the running demo (make stop) before this test"
    env = {
        **os.environ,
        "CREATOR_SYNC_AIRFLOW_HOME": str(tmp_path / "airflow"),
        "CREATOR_SYNC_RUN_DIR": str(tmp_path / "run"),
        "CREATOR_SYNC_DATA_URL": f"file://{tmp_path / 'data'}",
    }
    for key in [k for k in env if k.startswith(("AIRFLOW_", "AIRFLOW__"))]:
        del env[key]  # the test session's own Airflow settings must not leak into the demo
    yield env, tmp_path / "run"
    subprocess.run(["make", "stop"], cwd=REPO, env=env, capture_output=True)


def test_make_demo_twice_then_stop(demo_env):
    env, run_dir = demo_env
    first = subprocess.run(["make", "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    for pool in ("insightiq_api", "insider_upsert", "insider_profile", "insider_web_push"):
        assert pool in out, f"pool {pool} missing from `airflow pools list`"
    for conn in ("insightiq_default", "insider_default", "insider_web_push_default"):
        assert conn in out, f"connection {conn} missing from `airflow connections list`"
    assert "Reconciliation holds" in out
    assert "Airflow UI: http://localhost:8080" in out and "Login: admin / " in out

    second = subprocess.run(["make", "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "already running" in second.stdout
    groups = live_process_groups(run_dir)
    assert len(groups) == 2, groups  # sandboxes + airflow standalone

    stop = subprocess.run(["make", "stop"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    leftovers = [
        pgid
        for pgid in groups
        if subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode == 0
    ]
    assert leftovers == [], f"processes left behind in groups {leftovers}"
    assert not any(port_in_use(p) for p in PORTS)
