"""Start and stop a throw-away embedded Airflow (`airflow standalone`: scheduler, dag-processor, triggerer,
api-server on SQLite with LocalExecutor) for end-to-end tests and benchmarks, with the project's own
config: config/airflow.env, the package's pools file and connections given as AIRFLOW_CONN_* variables."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import httpx

from creator_sync.settings import pools_file
from devtools.airflow_api import AirflowAPI

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Embedded Airflow shares one SQLite file between the scheduler, the api-server and CLI calls such as
# `airflow backfill create`; SQLite's default 5 s busy timeout lets a loaded 2-core machine fail a write
# with "database is locked". Airflow reads this dict through [database] sql_alchemy_connect_args.
SQLITE_CONNECT_ARGS = {"timeout": 60}
SQLITE_CONNECT_ARGS_SETTING = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{__name__}.SQLITE_CONNECT_ARGS",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}


def sandbox_connections(insightiq_url: str, insider_url: str, web_push_url: str) -> dict[str, str]:
    """config/connections.json with the hosts pointed at running sandboxes, as AIRFLOW_CONN_* values."""
    from devtools.connections import connection_envs

    hosts = {"insightiq_default": insightiq_url, "insider_default": insider_url}
    return connection_envs(hosts | {"insider_web_push_default": web_push_url})


def migrated_sqlite_template(env: dict[str, str]) -> Path:
    """A SQLite metadata DB after `airflow db migrate` and `airflow pools import` of the package's pools,
    built once per Airflow version and pools file in the temp directory (an atomic rename, so concurrent
    test workers each see a whole file) and copied by each stack."""
    pools = pools_file().read_bytes()
    key = hashlib.sha256(version("apache-airflow").encode() + pools).hexdigest()[:16]
    template = Path(tempfile.gettempdir()) / f"creator-sync-airflow-{key}.db"
    if template.exists():
        return template
    with tempfile.TemporaryDirectory(prefix="creator-sync-airflow-template-") as home:
        build_env = {**env, "AIRFLOW_HOME": home}
        for args in (["db", "migrate"], ["pools", "import", str(pools_file())]):
            subprocess.run([str(BIN / "airflow"), *args], env=build_env, capture_output=True, check=True)
        partial = template.with_suffix(f".{os.getpid()}.partial")
        shutil.copyfile(Path(home) / "airflow.db", partial)
        os.replace(partial, template)
    return template


class AirflowStack:
    def __init__(self, home: Path, extra_env: dict[str, str] | None = None, port: int | None = None):
        self.home = Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **read_env_file(REPO / "config" / "airflow.env"),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "CREATOR_SYNC_DATA_URL": f"file://{self.home / 'data'}",
            # one machine, tasks killed on purpose: a killed upsert's retry waits its lease + settle time
            "CREATOR_SYNC_CLAIM_LEASE_S": "20",
            "CREATOR_SYNC_LOST_ANSWER_SETTLE_S": "5",
            **SQLITE_CONNECT_ARGS_SETTING,
            # the SQLite connect args above live in this dev-tool module, which is not installed
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None
        self._api: AirflowAPI | None = None

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, check=check
        )

    def airflow_write(self, *args: str, attempts: int = 5) -> subprocess.CompletedProcess:
        """A CLI write while the scheduler runs: retried when SQLite answers "database is locked" at once
        (a read transaction that must become a write while the scheduler writes: SQLite refuses instead
        of waiting, so the busy timeout cannot help). `airflow backfill create` removes its partial
        backfill on that error for exactly this retry (airflow.models.backfill._cleanup_partial_backfill)."""
        result = self.airflow(*args, check=False)
        for attempt in range(1, attempts):
            if result.returncode == 0 or "database is locked" not in result.stdout + result.stderr:
                break
            time.sleep(2 * attempt)
            result = self.airflow(*args, check=False)
        return result

    def prepare_db(self) -> None:
        """The metadata DB migrated and the package's pools imported. On the default SQLite file this is a
        copy of a template built once per Airflow version and pools file (two CLI start-ups, tens of
        seconds on a loaded machine, that every stack of a test session would otherwise repeat); a stack
        on another database runs the two commands itself."""
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in self.env:
            self.airflow("db", "migrate")
            self.airflow("pools", "import", str(pools_file()))
            return
        shutil.copyfile(migrated_sqlite_template(self.env), self.home / "airflow.db")

    def start(self, timeout: float = 180) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare_db()
        log = open(self.home / "standalone.log", "w")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [str(BIN / "airflow"), "standalone"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"airflow standalone did not start; see {self.home / 'standalone.log'}")
            time.sleep(1)
        return self

    @property
    def api(self) -> AirflowAPI:
        if self._api is None:
            passwords_file = self.home / "simple_auth_manager_passwords.json.generated"
            deadline = time.monotonic() + 60
            while not passwords_file.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            passwords = json.loads(passwords_file.read_text())
            self._api = AirflowAPI(self.url, "admin", passwords["admin"])
        return self._api

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process:
            with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
                os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
