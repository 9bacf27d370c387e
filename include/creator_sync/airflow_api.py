"""A small client for Airflow's public REST API (v2): the sync's report task writes the run note with it
(tasks never touch the metadata DB; they go through this API). devtools/airflow_api.py extends it for
`make demo` and the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


class AirflowAPIError(RuntimeError):
    pass


@dataclass
class AirflowAPI:
    base_url: str
    username: str
    password: str
    timeout: float = 30.0
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            token = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=self.timeout,
            )
            if token.status_code >= 400:
                raise AirflowAPIError(
                    f"Airflow API login as {self.username!r} failed: HTTP {token.status_code}"
                )
            self._client = httpx.Client(
                base_url=f"{self.base_url}/api/v2",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                timeout=self.timeout,
            )
        return self._client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AirflowAPIError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"note": note[:1000]})
