"""Start and stop a throw-away *distributed* Airflow: the docker-compose.yaml deployment (CeleryExecutor,
metadata DB on PostgreSQL, Celery broker on Redis, Celery results in PostgreSQL) as local subprocesses,
for end-to-end tests and benchmarks. The distributed sibling of ``devtools.airflow_stack.AirflowStack``.

    with CeleryStack(tmp_path, extra_env=sandbox_connections(...)) as stack:
        stack.api.wait_for_dag("creator_sync"); stack.api.unpause("creator_sync")
        run_id = stack.api.trigger("creator_sync")

What it reproduces from docker-compose.yaml:
- the environment: ``config/airflow.env`` (the compose ``env_file``), then every key of the compose
  ``x-airflow-common.environment``. Literal values are copied (executor, health check, ...); values that
  name compose hosts, volumes or ``${SECRETS}`` are replaced by local ones (``local_overrides``): fresh
  PostgreSQL databases on ``pg_host``, Redis dbs claimed from ``redis_dbs`` (broker and rate-limit budget
  on separate dbs, like compose's 0 and 1), generated Fernet/JWT/API secrets, folders of this repository.
  A new ``${...}`` key in compose that this module does not know raises, so the two cannot drift apart
  silently.
- the init container: ``scripts/compose-init.sh`` itself (db migrate, state DB, data dir, admin password,
  pools import). Connections come as ``AIRFLOW_CONN_*`` variables (``extra_env``), not from the file.
- the services: ``airflow scheduler``, ``airflow dag-processor``, ``airflow api-server``,
  ``airflow celery worker`` (and ``airflow triggerer`` with ``triggerer=True``), each in its own process
  group, logs in ``<home>/logs/<component>.log``. ``workers=N`` starts N Celery workers as separate hosts
  would run them: each with its own AIRFLOW_HOME (``<home>-celery-worker-<i>``), temp dir, log server port
  and Celery hostname, so they share no directory (run files then need ``s3://``).

Test-only deviations (all in ``test_overrides``): DAG folder re-scan every 5 s instead of 30 s, every port
chosen free (api-server, scheduler health check, worker/triggerer log servers), the api-server bound to
127.0.0.1. ``stop()`` kills every process group, drops both databases and empties the claimed Redis dbs.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from devtools.airflow_api import AirflowAPI
from devtools.airflow_stack import free_port, read_env_file

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
INIT_SCRIPT = REPO / "scripts" / "compose-init.sh"


def _host_port(env: str, default: str) -> tuple[str, int]:
    host, _, port = (os.environ.get(env) or default).rpartition(":")
    return host, int(port)


# Where the throw-away stacks find their servers (trust auth / no password, like the CI machines):
# $CREATOR_SYNC_TEST_POSTGRES=host:port (user $CREATOR_SYNC_TEST_POSTGRES_USER),
# $CREATOR_SYNC_TEST_REDIS=host:port.
PG_HOST, PG_PORT = _host_port("CREATOR_SYNC_TEST_POSTGRES", "127.0.0.1:5432")
PG_USER = os.environ.get("CREATOR_SYNC_TEST_POSTGRES_USER") or "postgres"
REDIS_HOST, REDIS_PORT = _host_port("CREATOR_SYNC_TEST_REDIS", "127.0.0.1:6379")
# Redis dbs reserved for throw-away stacks and the deploy tests (other tests use 15; `make demo` none).
TEST_REDIS_DBS = range(5, 10)
REDIS_CLAIM_KEY = "creator_sync:test_claim"
REDIS_CLAIM_TTL = 1800  # s; a crashed run's claim expires on its own

DEFAULT_COMPONENTS = ("scheduler", "dag-processor", "api-server", "celery worker")


# -- availability ------------------------------------------------------------------------------------------
def postgres_unavailable(host: str = PG_HOST, port: int = PG_PORT, user: str = PG_USER) -> str | None:
    """None if we can connect and CREATE DATABASE, else a reason naming PostgreSQL."""
    try:
        import psycopg2

        conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
                row = cur.fetchone()
        finally:
            conn.close()
    except Exception as exc:
        return f"PostgreSQL at {host}:{port} (user {user}) unreachable: {type(exc).__name__}: {exc}".strip()
    if not (row and row[0]):
        return f"PostgreSQL user {user} at {host}:{port} may not CREATE DATABASE"
    return None


def redis_unavailable(host: str = REDIS_HOST, port: int = REDIS_PORT) -> str | None:
    """None if Redis answers PING, else a reason naming Redis."""
    try:
        import redis

        redis.Redis(host=host, port=port, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {host}:{port} unreachable: {type(exc).__name__}: {exc}".strip()
    return None


def missing_services() -> list[str]:
    """Reasons why the distributed stack cannot run here (empty list: it can)."""
    return [reason for reason in (postgres_unavailable(), redis_unavailable()) if reason]


# -- fresh PostgreSQL databases -----------------------------------------------------------------------------
def _admin_conn(host: str = PG_HOST, port: int = PG_PORT, user: str = PG_USER):
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


def create_database(name: str, **where: Any) -> None:
    from psycopg2 import sql

    conn = _admin_conn(**where)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def drop_database(name: str, **where: Any) -> None:
    """DROP DATABASE ... WITH (FORCE) (PostgreSQL 13+): closes leftover sessions of killed processes."""
    from psycopg2 import sql

    conn = _admin_conn(**where)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def scratch_state_store(prefix: str):
    """A StateStore on a new PostgreSQL database named after ``prefix``, dropped on exit."""
    from creator_sync.store import StateStore

    name = unique_name(prefix)
    create_database(name)
    store = StateStore(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        yield store
    finally:
        store.engine.dispose()
        drop_database(name)


# -- Redis dbs ---------------------------------------------------------------------------------------------
class RedisDbClaim:
    """Exclusive use of ``count`` Redis dbs out of ``candidates``, so parallel runs never share a broker
    or a rate-limit budget: a db is ours once ``SET creator_sync:test_claim <token> NX EX ttl`` succeeds
    in it. Claimed dbs are emptied (leftovers of a crashed run) and emptied again on release."""

    def __init__(
        self,
        count: int,
        candidates: Iterable[int] = TEST_REDIS_DBS,
        host: str = REDIS_HOST,
        port: int = REDIS_PORT,
        ttl: int = REDIS_CLAIM_TTL,
    ) -> None:
        self.count, self.candidates, self.host, self.port, self.ttl = count, list(candidates), host, port, ttl
        self.token = uuid.uuid4().hex
        self.dbs: list[int] = []

    def _client(self, db: int):
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db, socket_connect_timeout=5)

    def url(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def _empty(self, db: int) -> None:
        client = self._client(db)
        keys = [k for k in client.scan_iter(count=1000) if k != REDIS_CLAIM_KEY.encode()]
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])

    def acquire(self) -> list[int]:
        for db in self.candidates:
            if len(self.dbs) == self.count:
                break
            if self._client(db).set(REDIS_CLAIM_KEY, self.token, nx=True, ex=self.ttl):
                self._empty(db)
                self.dbs.append(db)
        if len(self.dbs) < self.count:
            self.release()
            raise RuntimeError(
                f"no {self.count} free Redis dbs among {self.candidates} at {self.host}:{self.port} "
                f"(each holds a live {REDIS_CLAIM_KEY!r}; parallel runs, or wait {self.ttl} s for stale ones)"
            )
        return self.dbs

    def release(self) -> None:
        for db in self.dbs:
            client = self._client(db)
            with contextlib.suppress(Exception):
                self._empty(db)
                if client.get(REDIS_CLAIM_KEY) == self.token.encode():
                    client.delete(REDIS_CLAIM_KEY)
        self.dbs = []

    def __enter__(self) -> list[int]:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- the compose environment -------------------------------------------------------------------------------
def compose_common_environment(path: Path = COMPOSE_FILE) -> dict[str, str]:
    """The raw ``x-airflow-common.environment`` of docker-compose.yaml (values uninterpolated)."""
    doc = yaml.safe_load(path.read_text())
    return {k: str(v) for k, v in doc["x-airflow-common"]["environment"].items()}


PLAIN_DEFAULT = re.compile(r"^\$\{(?P<name>\w+):-(?P<default>[^}$]*)\}$")


def compose_environment(local_overrides: dict[str, str], path: Path = COMPOSE_FILE) -> dict[str, str]:
    """config/airflow.env (compose's env_file) + compose's environment, with local values for every key
    that names a compose host/volume or a ``${VARIABLE}``, and for the secrets compose's entry point
    exports; a plain setting ``${NAME:-default}`` gets its default. Any other interpolated key raises."""
    env = read_env_file(REPO / "config" / "airflow.env")
    unknown = []
    for key, value in compose_common_environment(path).items():
        if key in local_overrides:
            env[key] = local_overrides[key]
        elif (plain := PLAIN_DEFAULT.match(value)) and plain["name"] == key:
            env[key] = plain["default"]
        elif "${" in value or "$" in value:
            unknown.append(key)
        else:
            env[key] = value
    if unknown:
        raise RuntimeError(
            f"docker-compose.yaml x-airflow-common sets {unknown} from .env; CeleryStack has no local "
            "value for them: add them to CeleryStack.local_overrides"
        )
    # what compose's entry point (scripts/secrets-env.sh) exports from its secrets: not in the environment
    for key, value in local_overrides.items():
        env.setdefault(key, value)
    return env


class CeleryStack:
    """The compose deployment as subprocesses: fresh PostgreSQL databases, claimed Redis dbs."""

    def __init__(
        self,
        home: Path,
        extra_env: dict[str, str] | None = None,
        *,
        port: int | None = None,
        triggerer: bool = False,
        worker_concurrency: int | None = None,
        workers: int = 1,
        pg_host: str = PG_HOST,
        pg_port: int = PG_PORT,
        pg_user: str = PG_USER,
        redis_host: str = REDIS_HOST,
        redis_port: int = REDIS_PORT,
        redis_dbs: Iterable[int] = TEST_REDIS_DBS,
    ) -> None:
        self.home = Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Several workers are separate hosts: each has its own AIRFLOW_HOME (logs), temp dir, log server
        # port and Celery hostname, so they share no directory with each other or the scheduler.
        worker_names = (
            ("celery worker",) if workers == 1 else tuple(f"celery worker-{i}" for i in range(workers))
        )
        self.components = (
            *(c for c in DEFAULT_COMPONENTS if c != "celery worker"),
            *worker_names,
            *(("triggerer",) if triggerer else ()),
        )
        self.extra_env = dict(extra_env or {})
        self.worker_concurrency = worker_concurrency
        self.pg = {"host": pg_host, "port": pg_port, "user": pg_user}
        self.metadata_db = unique_name("cs_airflow")
        self.state_db = unique_name("cs_state")
        self.redis = RedisDbClaim(2, redis_dbs, host=redis_host, port=redis_port)
        self.admin_password = secrets.token_urlsafe(16)
        self.processes: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self._created: list[str] = []
        self._api: AirflowAPI | None = None
        self.timings: dict[str, float] = {}

    # -- configuration ---------------------------------------------------------------------------------
    def _pg_url(self, scheme: str, database: str) -> str:
        return f"{scheme}://{self.pg['user']}@{self.pg['host']}:{self.pg['port']}/{database}"

    def local_overrides(self, broker_db: int, limiter_db: int) -> dict[str, str]:
        """Local values for the compose keys that name hosts, volumes or secrets."""
        from cryptography.fernet import Fernet

        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self._pg_url("postgresql+psycopg2", self.metadata_db),
            "AIRFLOW__CELERY__RESULT_BACKEND": self._pg_url("db+postgresql", self.metadata_db),
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url(broker_db),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                self.home / "auth" / "simple_auth_manager_passwords.json"
            ),
            "CREATOR_SYNC_DATA_URL": f"file://{self.home / 'data'}",
            "CREATOR_SYNC_STATE_URL": self._pg_url("postgresql", self.state_db),
            "CREATOR_SYNC_RATE_LIMIT_BACKEND": self.redis.url(limiter_db),
        }

    def test_overrides(self) -> dict[str, str]:
        env = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            # compose-init.sh inputs (the airflow-init service's environment)
            "CREATOR_SYNC_HOME": str(REPO),
            "AIRFLOW_ADMIN_PASSWORD": self.admin_password,
            "CREATOR_SYNC_CONNECTIONS_FILE": "",  # connections come as AIRFLOW_CONN_* (extra_env)
            # one machine, tasks killed on purpose: a killed upsert's retry waits its lease + settle time
            "CREATOR_SYNC_CLAIM_LEASE_S": "20",
            "CREATOR_SYNC_LOST_ANSWER_SETTLE_S": "5",
        }
        if self.worker_concurrency:
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        return env

    def _build_env(self, broker_db: int, limiter_db: int) -> dict[str, str]:
        # Hermetic: nothing Airflow/creator-sync specific leaks in from the caller's environment.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CREATOR_SYNC_", "PYTEST_"))
        }
        return {
            **inherited,
            **compose_environment(self.local_overrides(broker_db, limiter_db)),
            **self.test_overrides(),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            **self.extra_env,
        }

    # -- lifecycle ---------------------------------------------------------------------------------------
    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, check=check
        )

    def _log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name.replace(' ', '-')}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return self._log_path(name).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = 180) -> CeleryStack:
        t0 = time.monotonic()
        missing = missing_services()
        if missing:
            raise RuntimeError("; ".join(missing))
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "logs").mkdir(exist_ok=True)
            broker_db, limiter_db = self.redis.acquire()
            self.env = self._build_env(broker_db, limiter_db)
            create_database(self.metadata_db, **self.pg)
            self._created.append(self.metadata_db)
            self._created.append(self.state_db)  # compose-init.sh creates it; we drop it
            init = subprocess.run(
                ["bash", str(INIT_SCRIPT)], env=self.env, capture_output=True, text=True, cwd=REPO
            )
            self._log_path("init").write_text(init.stdout + init.stderr)
            if init.returncode != 0:
                output = (init.stdout + init.stderr)[-3000:]
                raise RuntimeError(f"scripts/compose-init.sh failed ({init.returncode}):\n{output}")
            self.timings["init"] = time.monotonic() - t0
            for component in self.components:
                log = open(self._log_path(component), "w")  # noqa: SIM115 - lives as long as the process
                argv, env, cwd = self._command(component)
                self.processes[component] = subprocess.Popen(
                    [str(BIN / "airflow"), *argv],
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._wait_healthy(timeout)
            self.timings["start"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def worker_home(self, component: str) -> Path:
        return self.home.parent / f"{self.home.name}-{component.replace(' ', '-')}"

    def _command(self, component: str) -> tuple[list[str], dict[str, str], Path]:
        """argv, environment and working directory of one component."""
        if not component.startswith("celery worker-"):
            return component.split(), self.env, self.home
        home = self.worker_home(component)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "AIRFLOW_HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        name = component.removeprefix("celery ")
        return ["celery", "worker", "--celery-hostname", f"{name}@%h"], env, home

    def _wait_healthy(self, timeout: float) -> None:
        """api-server answers and reports the metadatabase, scheduler and dag processor healthy."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=3)
                if response.status_code == 200:
                    body = response.json()
                    parts = ("metadatabase", "scheduler", "dag_processor")
                    if all((body.get(p) or {}).get("status") == "healthy" for p in parts):
                        return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(
            f"stack not healthy within {timeout:.0f} s (last health {body}); logs in {self.home / 'logs'}"
        )

    def check_alive(self) -> None:
        """Raise with the log tail of the first component that exited."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {proc.returncode}; log tail:\n{self.log_tail(name)}"
                )

    @property
    def api(self) -> AirflowAPI:
        if self._api is None:
            self._api = AirflowAPI(self.url, "admin", self.admin_password)
        return self._api

    def stop(self) -> None:
        for proc in self.processes.values():  # SIGTERM everything first: warm shutdown in parallel
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # the leader, or children that outlived it
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.processes = {}
        for name in self._created:
            with contextlib.suppress(Exception):
                drop_database(name, **self.pg)
        self._created = []
        self.redis.release()

    def __enter__(self) -> CeleryStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- checks on a finished run --------------------------------------------------------------------------------
def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None


def task_instance_tries(api: AirflowAPI, dag_id: str, run_id: str) -> list[dict]:
    """Every try of every task instance of a run (earlier tries of retried tasks held pool slots too)."""
    base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
    tis = api._call("GET", base, params={"limit": 1000})["task_instances"]
    tries = []
    for ti in tis:
        if (ti.get("try_number") or 0) > 1:
            path = f"{base}/{ti['task_id']}/{ti['map_index']}/tries"
            tries.extend(api._call("GET", path, params={"limit": 100})["task_instances"])
        else:
            tries.append(ti)
    return tries


def max_pool_overlap(task_instances: Iterable[dict]) -> dict[str, int]:
    """Per pool, the largest number of task instances running at the same moment, from start/end dates
    (intervals [start, end); an end and a start at the same instant do not overlap)."""
    events: dict[str, list[tuple[datetime, int]]] = {}
    for ti in task_instances:
        start, end = _parse(ti.get("start_date")), _parse(ti.get("end_date"))
        if start is None:
            continue
        if end is None:
            raise ValueError(f"task instance {ti['task_id']}[{ti.get('map_index')}] has no end_date yet")
        slots = int(ti.get("pool_slots") or 1)
        events.setdefault(ti["pool"], []).extend([(start, slots), (end, -slots)])
    overlap = {}
    for pool, marks in events.items():
        running = peak = 0
        for _, delta in sorted(marks, key=lambda m: (m[0], m[1])):  # ends (-) before starts (+)
            running += delta
            peak = max(peak, running)
        overlap[pool] = peak
    return overlap


def pool_slots(api: AirflowAPI) -> dict[str, int]:
    return {p["name"]: p["slots"] for p in api._call("GET", "/pools", params={"limit": 100})["pools"]}


__all__ = [
    "CeleryStack",
    "RedisDbClaim",
    "compose_environment",
    "create_database",
    "drop_database",
    "max_pool_overlap",
    "missing_services",
    "pool_slots",
    "postgres_unavailable",
    "redis_unavailable",
    "task_instance_tries",
]
