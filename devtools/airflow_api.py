"""The Airflow REST API client of `make demo` and the end-to-end tests: the package's client
(creator_sync.airflow_api, which the report task uses for the run note) plus DAG/run helpers."""

from __future__ import annotations

import time
from typing import Any

from creator_sync.airflow_api import AirflowAPI as _RuntimeAirflowAPI
from creator_sync.airflow_api import AirflowAPIError

FINISHED = {"success", "failed"}

__all__ = ["FINISHED", "AirflowAPI", "AirflowAPIError"]


class AirflowAPI(_RuntimeAirflowAPI):
    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.client.get(f"/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise AirflowAPIError(f"DAG {dag_id} was not parsed within {timeout:.0f} s")
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in FINISHED:
            if time.monotonic() > deadline:
                raise AirflowAPIError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
            time.sleep(3)
        return state

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self._call("GET", path, params={"deserialize": True})["value"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        body = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
            for ti in body["task_instances"]
        }

    def runs(self, dag_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self._call("GET", path, params={"limit": 1000})["task_instances"]

    def clear_run(self, dag_id: str, run_id: str) -> None:
        body = {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True}
        self._call("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def asset_events(self, dag_id: str, run_id: str) -> list[dict]:
        """The Asset events a run of `dag_id` emitted (each with its asset's `name`, `uri` and `extra`)."""
        params = {"source_dag_id": dag_id, "source_run_id": run_id, "limit": 100}
        return self._call("GET", "/assets/events", params=params)["asset_events"]
