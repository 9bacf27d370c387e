"""scripts/compose-init.sh (the compose `airflow-init` service) run for real against the local PostgreSQL.

Same environment as in compose except the host names (127.0.0.1 instead of the `postgres` service) and the
paths (a temp dir instead of the volumes); throw-away databases, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from cryptography.fernet import Fernet
from deploy_support import FAB_AUTH_MANAGER, INIT_SCRIPT, REPO, airflow_env

from creator_sync.settings import pools_file
from devtools.services import require

psycopg2 = pytest.importorskip("psycopg2")

PG = {"host": "127.0.0.1", "port": 5432, "user": os.environ.get("PGUSER", "postgres")}

pytestmark = pytest.mark.slow


def admin_connection():
    connection = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    connection.autocommit = True
    return connection


@pytest.fixture
def databases():
    try:
        admin = admin_connection()
    except psycopg2.OperationalError as error:
        require(f"PostgreSQL at 127.0.0.1:5432: {error}", "the init script test")
    suffix = uuid.uuid4().hex[:10]
    meta, state = f"cs_init_meta_{suffix}", f"cs_init_state_{suffix}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{meta}"')
    yield meta, state
    with admin.cursor() as cur:
        for name in (meta, state):
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def run_init(env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, cwd="/", capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def query(database: str, sql: str) -> list[tuple]:
    connection = psycopg2.connect(dbname=database, **PG)
    try:
        with connection.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        connection.close()


def test_init_migrates_creates_state_db_and_loads_the_demo_pools_and_connections(databases, tmp_path):
    meta, state = databases
    env = airflow_env()
    for key in [k for k in env if k.startswith(("AIRFLOW__", "CREATOR_SYNC_"))]:
        del env[key]
    for line in (REPO / "config" / "airflow.env").read_text().splitlines():  # compose's env_file
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    passwords = tmp_path / "auth" / "passwords.json"
    env.update(
        {
            "CREATOR_SYNC_HOME": str(REPO),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@127.0.0.1:5432/{meta}",
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret",
            "AIRFLOW__API__SECRET_KEY": "test-api-secret-key",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,  # as in compose
            "AIRFLOW_ADMIN_PASSWORD": "test-admin-password",
            "CREATOR_SYNC_STATE_URL": f"postgresql://{PG['user']}@127.0.0.1:5432/{state}",
            "CREATOR_SYNC_DATA_URL": f"file://{tmp_path / 'data'}",
            "CREATOR_SYNC_SANDBOX_HOST": "sandbox",
        }
    )

    run_init(env)

    pools_doc = json.loads(pools_file().read_text())
    pools = dict(query(meta, "SELECT pool, slots FROM slot_pool"))
    assert {name: pools[name] for name in pools_doc} == {name: p["slots"] for name, p in pools_doc.items()}
    conns_file = json.loads((REPO / "config" / "connections.json").read_text())
    conns = {row[0]: row[1:] for row in query(meta, "SELECT conn_id, conn_type, host, login FROM connection")}
    for conn_id, conn in conns_file.items():
        conn_type, host, login = conns[conn_id]
        assert (conn_type, login) == (conn["conn_type"], conn["login"])
        assert host == conn["host"].replace("127.0.0.1", "sandbox"), conn_id
    assert query("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{state}'") == [(1,)]
    assert (tmp_path / "data").is_dir()
    # the FAB admin user, with the password of .env (no SimpleAuthManager password file under FAB)
    [(admin, password_hash)] = query(meta, "SELECT username, password FROM ab_user")
    assert admin == "admin" and password_hash and "test-admin-password" not in password_hash
    assert not passwords.exists()

    # Second run (every `docker compose up`): a vendor raised a limit in pools.json -> slots follow;
    # connections already there (maybe real ones set in the UI) are kept.
    raised = {**pools_doc, "insider_web_push": {**pools_doc["insider_web_push"], "slots": 3}}
    (tmp_path / "pools.json").write_text(json.dumps(raised))
    env.update(
        {"CREATOR_SYNC_POOLS_FILE": str(tmp_path / "pools.json"), "CREATOR_SYNC_SANDBOX_HOST": "elsewhere"}
    )
    env["AIRFLOW_ADMIN_PASSWORD"] = "another-password"
    run_init(env)
    assert query(meta, "SELECT username, password FROM ab_user") == [("admin", password_hash)]  # kept
    assert dict(query(meta, "SELECT pool, slots FROM slot_pool"))["insider_web_push"] == 3
    hosts = dict(query(meta, "SELECT conn_id, host FROM connection"))
    assert all("//sandbox:" in hosts[conn_id] for conn_id in conns_file)

    # CREATOR_SYNC_CONNECTIONS_OVERWRITE=true resets them to the file.
    env["CREATOR_SYNC_CONNECTIONS_OVERWRITE"] = "true"
    run_init(env)
    hosts = dict(query(meta, "SELECT conn_id, host FROM connection"))
    assert all("//elsewhere:" in hosts[conn_id] for conn_id in conns_file)


def test_production_init_imports_no_connection_and_the_sandbox_profile_imports_them(databases, tmp_path):
    meta, state = databases
    env = airflow_env()
    env.update(
        {
            "CREATOR_SYNC_HOME": str(REPO),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@127.0.0.1:5432/{meta}",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret",
            "AIRFLOW__API__SECRET_KEY": "test-api-secret-key",
            "AIRFLOW_ADMIN_PASSWORD": "test-admin-password",
            "CREATOR_SYNC_STATE_URL": f"postgresql://{PG['user']}@127.0.0.1:5432/{state}",
            "CREATOR_SYNC_DATA_URL": f"file://{tmp_path / 'data'}",
            "CREATOR_SYNC_CONNECTIONS_FILE": "",  # compose's airflow-init
        }
    )
    run_init(env)
    assert query(meta, "SELECT conn_id FROM connection") == []
    env.update(
        {"CREATOR_SYNC_CONNECTIONS_FILE": "config/connections.json", "CREATOR_SYNC_SANDBOX_HOST": "sandbox"}
    )
    done = subprocess.run(
        ["bash", str(INIT_SCRIPT), "--connections-only"], env=env, cwd="/", capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "db migrate" not in done.stdout and "pools from" not in done.stdout
    conns_file = json.loads((REPO / "config" / "connections.json").read_text())
    assert {row[0] for row in query(meta, "SELECT conn_id FROM connection")} == set(conns_file)


def test_init_refuses_to_run_without_the_secrets():
    env = airflow_env()
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        env.pop(key, None)
    result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "AIRFLOW__CORE__FERNET_KEY is not set" in result.stderr


def test_init_gives_the_state_db_its_own_role_that_is_no_superuser(databases, tmp_path):
    """Compose's state URL names a role of its own: init creates it (login only) and the DB it owns."""
    meta, state = databases
    role = f"cs_state_role_{uuid.uuid4().hex[:8]}"
    env = airflow_env()
    for key in [k for k in env if k.startswith(("AIRFLOW__", "CREATOR_SYNC_"))]:
        del env[key]
    env.update(
        {
            "CREATOR_SYNC_HOME": str(REPO),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@127.0.0.1:5432/{meta}",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret",
            "AIRFLOW__API__SECRET_KEY": "test-api-secret-key",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "CREATOR_SYNC_STATE_URL": f"postgresql://{role}:state-pw@127.0.0.1:5432/{state}",
            "CREATOR_SYNC_DATA_URL": f"file://{tmp_path / 'data'}",
            "CREATOR_SYNC_CONNECTIONS_FILE": "",
        }
    )
    try:
        output = run_init(env).stdout
        assert f"state role '{role}' created" in output
        flags = query(
            "postgres",
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
            f"WHERE rolname = '{role}'",
        )
        assert flags == [(False, False, False, True)]
        owner = query(
            "postgres", f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{state}'"
        )
        assert owner == [(role,)]
        assert f"state role '{role}' altered" in run_init(env).stdout  # again: the password follows the URL
    finally:
        admin = admin_connection()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{state}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()
