"""Secrets scan after an Airflow run: no connection password/token may appear in task logs, XCom values,
rendered template fields, the DAG run note or report.md.

``connection_secrets()`` takes the secrets from config/connections.json (passwords, and the Basic-auth form
``base64(login:password)`` a leaked Authorization header would show); ``find_secrets`` reports every place a
secret (or its URL-encoded form) occurs, naming the place and the connection, never the value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devtools.connections import connections_file_entries

MIN_SECRET_LEN = 6  # shorter values would match by accident (and are not real credentials)


@dataclass(frozen=True)
class Secret:
    name: str  # e.g. "insider_default password" (never the value)
    value: str


@dataclass(frozen=True)
class Finding:
    where: str  # "log dag_id=.../attempt=1.log", "xcom upsert/return_value", "run note", ...
    secret: str  # the Secret's name

    def __str__(self) -> str:
        return f"{self.secret} found in {self.where}"


def connection_secrets(extra: Iterable[Secret] = ()) -> list[Secret]:
    secrets = []
    for conn_id, entry in connections_file_entries().items():
        password = entry.get("password")
        if password and len(password) >= MIN_SECRET_LEN:
            secrets.append(Secret(f"{conn_id} password", password))
            if entry.get("login"):
                basic = base64.b64encode(f"{entry['login']}:{password}".encode()).decode()
                secrets.append(Secret(f"{conn_id} Basic auth", basic))
    return secrets + list(extra)


def find_secrets(texts: Iterable[tuple[str, str]], secrets: Iterable[Secret]) -> list[Finding]:
    """Every (place, secret) where a secret's value or URL-encoded value occurs in a text."""
    forms = []
    for secret in secrets:
        for form in {secret.value, quote(secret.value, safe="")}:
            forms.append((secret.name, form))
    findings = []
    for where, text in texts:
        for name, form in forms:
            if form in text:
                findings.append(Finding(where, name))
    return findings


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def airflow_run_texts(api, home: Path, dag_id: str, run_ids: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Everything a user can read about the runs: task log files under AIRFLOW_HOME/logs, each XCom value
    (REST API), each task instance with its rendered fields (REST API), the run itself with its note, and
    every report.md under the data directory."""
    for path in sorted((home / "logs").rglob("*")):
        if path.is_file():
            yield f"log {path.relative_to(home / 'logs')}", path.read_text(errors="replace")
    for run_id in run_ids:
        run = api._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        yield f"run {run_id} (note, conf)", _text(run)
        for ti in api.task_instances(dag_id, run_id):
            where = f"task instance {ti['task_id']}[{ti['map_index']}] of {run_id}"
            yield f"{where} (rendered fields)", _text(ti)
        entries = api._call(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries", params={"limit": 1000}
        )["xcom_entries"]
        for entry in entries:
            path = (
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}"
            )
            params = {"deserialize": True, "map_index": entry.get("map_index", -1)}
            value = api._call("GET", path, params=params).get("value")
            yield (
                f"xcom {entry['task_id']}[{entry.get('map_index', -1)}]/{entry['key']} of {run_id}",
                _text(value),
            )
    for report in sorted((home / "data").rglob("report.md")):
        yield f"report {report.relative_to(home)}", report.read_text(errors="replace")
