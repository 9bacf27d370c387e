"""Secrets scan after an Airflow run: no secret may appear anywhere a user, a log shipper or a backup reads.

The secrets (``all_secrets``):
* the connections of config/connections.json (``connection_secrets``: passwords, and the Basic-auth form
  ``base64(login:password)`` a leaked Authorization header would show);
* every connection given by environment (``AIRFLOW_CONN_*``, JSON or URI form: the S3 and alert
  connections of a deployment, the sandboxes' connections of a test stack): password, Basic-auth form, and
  extra fields named like a secret (``aws_secret_access_key``, ``token``, ...);
* the Insider error-callback token derived from the Insider request token, and
  ``CREATOR_SYNC_INSIDER_CALLBACK_TOKEN`` when set;
* the Airflow users' passwords (SimpleAuthManager's password file: the demo's admin login).

The places (``airflow_run_texts`` + ``deployment_texts``): task logs, XCom values, rendered template
fields, the DAG run note and conf, report.md; the API-server / standalone / scheduler logs (every ``*.log``
and ``*.out`` under AIRFLOW_HOME); every table of the state DB (dead letters, in-flight records, run
reports, ...); every run file under the data directory (JSON, JSON Lines, Markdown, Parquet read as rows).

``find_secrets`` reports every place a secret (or its URL-encoded form) occurs, naming the place and the
secret, never the value. One line is not a finding: SimpleAuthManager's own start-up banner
``Password for user '<name>': ...`` (Airflow prints generated passwords there by design).
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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


SECRET_FIELD = re.compile(r"secret|token|passw|api_?key|private|credential|session", re.IGNORECASE)
_AIRFLOW_PASSWORD_BANNER = re.compile(r"Password for user '[^']*': \S+")
CONN_ENV_PREFIX = "AIRFLOW_CONN_"


def _login_secrets(name: str, login: str | None, password: str | None) -> list[Secret]:
    if not password or len(password) < MIN_SECRET_LEN:
        return []
    found = [Secret(f"{name} password", password)]
    if login:
        basic = base64.b64encode(f"{login}:{password}".encode()).decode()
        found.append(Secret(f"{name} Basic auth", basic))
    return found


def _extra_secrets(name: str, extra: Any, path: str = "extra") -> list[Secret]:
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            return []
    found = []
    if isinstance(extra, dict):
        for key, value in extra.items():
            where = f"{path}.{key}"
            if isinstance(value, (dict, list)):
                found += _extra_secrets(name, value, where)
            elif SECRET_FIELD.search(str(key)) and isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
                found.append(Secret(f"{name} {where}", value))
    elif isinstance(extra, list):
        for i, value in enumerate(extra):
            found += _extra_secrets(name, value, f"{path}[{i}]")
    return found


def connection_value_secrets(conn_id: str, value: str) -> list[Secret]:
    """The secrets of one connection value as Airflow reads ``AIRFLOW_CONN_<ID>``: JSON or a URI."""
    name = f"{conn_id} (environment)"
    try:
        entry = json.loads(value)
    except ValueError:
        entry = None
    if isinstance(entry, dict):
        return _login_secrets(name, entry.get("login"), entry.get("password")) + _extra_secrets(
            name, entry.get("extra") or {}
        )
    parts = urlsplit(value)
    password = unquote(parts.password) if parts.password else None
    login = unquote(parts.username) if parts.username else None
    query = {k: v for k, v in parse_qsl(parts.query)}
    if "__extra__" in query:
        return _login_secrets(name, login, password) + _extra_secrets(name, query["__extra__"])
    return _login_secrets(name, login, password) + _extra_secrets(name, query)


def env_connection_secrets(env: Mapping[str, str]) -> list[Secret]:
    """The secrets of every ``AIRFLOW_CONN_*`` variable in `env`."""
    found = []
    for key, value in sorted(env.items()):
        if key.startswith(CONN_ENV_PREFIX) and value:
            found += connection_value_secrets(key[len(CONN_ENV_PREFIX) :].lower(), value)
    return found


def callback_token_secrets(env: Mapping[str, str], insider_passwords: Iterable[str]) -> list[Secret]:
    """The Insider error-callback tokens: derived from each Insider request token, and the explicit one."""
    from creator_sync.routes.callback import CALLBACK_TOKEN_ENV, derived_callback_token

    found = [
        Secret("Insider error-callback token", derived_callback_token(p)) for p in insider_passwords if p
    ]
    explicit = env.get(CALLBACK_TOKEN_ENV, "").strip()
    if len(explicit) >= MIN_SECRET_LEN:
        found.append(Secret(f"{CALLBACK_TOKEN_ENV}", explicit))
    return found


def airflow_user_secrets(home: Path) -> list[Secret]:
    """The passwords of SimpleAuthManager's password file (the demo's and the test stacks' logins)."""
    path = home / "simple_auth_manager_passwords.json.generated"
    if not path.is_file():
        return []
    return [
        Secret(f"Airflow user {user} password", password)
        for user, password in json.loads(path.read_text()).items()
        if isinstance(password, str) and len(password) >= MIN_SECRET_LEN
    ]


def all_secrets(env: Mapping[str, str], home: Path | None = None) -> list[Secret]:
    """Every secret listed in the module docstring, for a stack run with environment `env`."""
    from_file = connection_secrets()
    from_env = env_connection_secrets(env)
    insider = [
        s.value
        for s in from_file + from_env
        if s.name in ("insider_default password", "insider_default (environment) password")
    ]
    users = airflow_user_secrets(home) if home is not None else []
    unique = {
        (s.name, s.value): s for s in from_file + from_env + callback_token_secrets(env, insider) + users
    }
    return list(unique.values())


def find_secrets(texts: Iterable[tuple[str, str]], secrets: Iterable[Secret]) -> list[Finding]:
    """Every (place, secret) where a secret's value or URL-encoded value occurs in a text."""
    forms = []
    for secret in secrets:
        for form in {secret.value, quote(secret.value, safe="")}:
            forms.append((secret.name, form))
    findings = []
    for where, text in texts:
        text = _AIRFLOW_PASSWORD_BANNER.sub("Password for user (banner)", text)
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


TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".txt", ".csv", ".log")


def server_log_texts(home: Path) -> Iterator[tuple[str, str]]:
    """The logs of the API server, scheduler, dag-processor, triggerer and `airflow standalone`: every
    ``*.log`` / ``*.out`` under AIRFLOW_HOME outside the task logs (``logs/``, see airflow_run_texts)."""
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.suffix not in (".log", ".out"):
            continue
        if path.is_relative_to(home / "logs") and "dag_id=" in str(path):
            continue
        yield f"server log {path.relative_to(home)}", path.read_text(errors="replace")


def state_db_texts(path: Path) -> Iterator[tuple[str, str]]:
    """Every table of a SQLite state DB as text (dead letters, in-flight records, run reports, ...)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            yield f"state DB {path.name} table {table}", json.dumps(rows, default=str, ensure_ascii=False)
    finally:
        db.close()


def run_file_texts(data_dir: Path) -> Iterator[tuple[str, str]]:
    """Every run file under the data directory: text files as they are, Parquet files as their rows."""
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file():
            continue
        where = f"run file {path.relative_to(data_dir)}"
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield where, json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
        elif path.suffix in TEXT_SUFFIXES:
            yield where, path.read_text(errors="replace")


def deployment_texts(home: Path, state_dbs: Iterable[Path] = ()) -> Iterator[tuple[str, str]]:
    """The places beyond one DAG's runs: server logs, the state DB(s), the run files of the data dir."""
    yield from server_log_texts(home)
    for path in state_dbs:
        if path.is_file():
            yield from state_db_texts(path)
    if (home / "data").is_dir():
        yield from run_file_texts(home / "data")


def _kind(where: str) -> str:
    """The kind of a place: "server log", "state DB", "run file", else its first word ("log", "xcom")."""
    words = where.split()
    return " ".join(words[:2]) if where.startswith(("server log", "state DB", "run file")) else words[0]


def scan_stack(
    api, home: Path, env: Mapping[str, str], runs: Mapping[str, Iterable[str]], state_dbs: Iterable[Path]
) -> tuple[list[Finding], set[str]]:
    """Scan a test stack after its runs: (findings, kinds of place scanned). `runs`: dag_id -> run ids.
    The kinds ("log", "xcom", "report", "server log", "state DB", "run file", ...) let a test check that
    the places it expects were there to scan."""
    texts = []
    for dag_id, run_ids in runs.items():
        texts += list(airflow_run_texts(api, home, dag_id, run_ids))
    texts += list(deployment_texts(home, state_dbs))
    kinds = {_kind(where) for where, _ in texts}
    return find_secrets(texts, all_secrets(env, home)), kinds
