"""`make demo`'s last step: run one creator sync through the running Airflow, write its report into the run's
note and print it.

The note is written here, with the admin login this process reads from SimpleAuthManager's password file,
not by the report task: a task would need the password in an Airflow connection, which every task can
read (creator_sync.sync.run_note)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from devtools.airflow_api import AirflowAPI
from devtools.webhook_setup import SETUP_DAG, register_webhook

HISTORY_DAG = "creator_sync_history"


def admin_login(airflow_home: Path) -> tuple[str, str]:
    passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    username = "admin" if "admin" in passwords else next(iter(passwords))
    return username, passwords[username]


def latest_run_after_unpause(api: AirflowAPI, dag_id: str, wait: float = 45) -> str:
    """On the first demo, unpausing makes the scheduler create the latest interval's run: use it.
    Later demos (already unpaused, no new interval yet) trigger a manual run of the last interval."""
    known = {r["dag_run_id"] for r in api.runs(dag_id)}
    api.unpause(dag_id)
    deadline = time.monotonic() + (wait if not known else 0)
    while time.monotonic() < deadline:
        new = [r for r in api.runs(dag_id) if r["dag_run_id"] not in known]
        if new:
            return new[0]["dag_run_id"]
        time.sleep(2)
    return api.trigger(dag_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag-id", default="creator_sync")
    parser.add_argument("--url", default=f"http://localhost:{os.environ.get('AIRFLOW__API__PORT', '8080')}")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    api = AirflowAPI(args.url, *admin_login(Path(os.environ["AIRFLOW_HOME"])))
    print(f"demo: waiting for the dag-processor to parse {args.dag_id}")
    api.wait_for_dag(args.dag_id)
    run_id = latest_run_after_unpause(api, args.dag_id)
    print(f"demo: {args.dag_id} run {run_id}; waiting for it to finish")
    state = api.wait_for_run(args.dag_id, run_id, timeout=args.timeout)
    print(f"demo: run {run_id} finished: {state}")
    if state != "success":
        for task, task_state in sorted(api.task_states(args.dag_id, run_id).items()):
            print(f"  {task}: {task_state}")
        return 1
    report = api.xcom(args.dag_id, run_id, "report")
    text = report.get("text") if isinstance(report, dict) else str(report)
    write_note(api, args.dag_id, run_id, text)
    print(text)
    enable_webhooks(api)
    return 0


def enable_webhooks(api: AirflowAPI) -> None:
    """Register the receiver at the InsightIQ sandbox (once: a later demo finds the setup DAG's successful
    run) and unpause creator_sync_history, so a connect or disconnect at the sandbox reaches Insider."""
    api.wait_for_dag(SETUP_DAG)
    if not any(r["state"] == "success" for r in api.runs(SETUP_DAG)):
        print(f"demo: registering the InsightIQ webhook ({SETUP_DAG})")
        register_webhook(api)
    api.unpause(HISTORY_DAG)
    print(f"demo: InsightIQ webhooks reach the receiver; {HISTORY_DAG} unpaused")


def write_note(api: AirflowAPI, dag_id: str, run_id: str, text: str) -> bool:
    """The report as the run's note (the DAG run page shows it); a failure is reported, not fatal."""
    try:
        api.set_note(dag_id, run_id, text)
    except Exception as exc:  # the request carries the login: name the error type only
        print(f"demo: could not write the run note: {type(exc).__name__}")
        return False
    print(f"demo: report written to the note of run {run_id}")
    return True


if __name__ == "__main__":
    sys.exit(main())
