"""docker-compose.yaml: valid Compose, the official Airflow 3 shape, no secrets, and every command exists.

The Compose Specification schema is vendored in tests/deploy/compose-spec.json, unmodified: it is
compose-spec/compose-spec `schema/compose-spec.json` (Apache-2.0, LICENSE.compose-spec beside it) as
bundled in the PyPI package check-jsonschema 0.39.0
(check_jsonschema/builtin_schemas/vendor/compose-spec.json, whose own sha256 file records the digest below).
To update: `pip download --no-deps check-jsonschema`, copy that file over, update COMPOSE_SPEC_SHA256.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml
from deploy_support import (
    AIRFLOW,
    AIRFLOW_SERVICES,
    ALL_SERVICES,
    ANCHORED_SERVICES,
    DEPLOY_TESTS,
    FAB_AUTH_MANAGER,
    INIT_SCRIPT,
    ONE_SHOT_SERVICES,
    REPO,
    REQUIRED_SECRETS,
    VENV_BIN,
    InterpolationError,
    example_env,
    interpolate,
    read_env_example,
    run,
    run_many,
    variables_in,
)

COMPOSE_SPEC = DEPLOY_TESTS / "compose-spec.json"
COMPOSE_SPEC_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

LONG_RUNNING = ALL_SERVICES - ONE_SHOT_SERVICES
ANCHORED = ANCHORED_SERVICES
DATA_DIR = "/opt/airflow/data"

# Airflow subcommands the deployment runs: service commands, the init script, healthchecks.
REQUIRED_AIRFLOW_COMMANDS = {
    "api-server",
    "scheduler",
    "dag-processor",
    "triggerer",
    "celery worker",
    "db migrate",
    "pools import",
    "connections import",
    "jobs check",
}


def compose_spec_validator():
    schema = json.loads(COMPOSE_SPEC.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


# --- Compose Specification ----------------------------------------------------------------------------------


def test_vendored_compose_spec_schema_is_the_upstream_file():
    digest = hashlib.sha256(COMPOSE_SPEC.read_bytes()).hexdigest()
    assert digest == COMPOSE_SPEC_SHA256, "tests/deploy/compose-spec.json differs from the vendored upstream"
    schema = json.loads(COMPOSE_SPEC.read_text())
    assert schema["title"] == "Compose Specification"
    assert (DEPLOY_TESTS / "LICENSE.compose-spec").read_text().lstrip().startswith("Apache License")


def test_compose_file_is_valid_compose_specification(compose):
    errors = sorted(compose_spec_validator().iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_file_is_valid_before_interpolation_too(compose_raw):
    errors = list(compose_spec_validator().iter_errors(compose_raw))
    assert not errors, [e.message for e in errors]


def test_schema_validation_catches_a_broken_file(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-worker"]["healthcheck"]["intervall"] = "30s"
    broken["services"]["redis"]["depends_on"] = {"postgres": {"condition": "when_ready"}}
    assert len(list(compose_spec_validator().iter_errors(broken))) >= 2


# --- Shape --------------------------------------------------------------------------------------------------


def test_all_services_exist(compose):
    assert set(compose["services"]) == ALL_SERVICES


def test_airflow_services_merge_the_common_anchor(compose_text):
    """`<<: *airflow-common` (checked on the YAML node graph, before merge keys are flattened)."""
    root = yaml.compose(compose_text)
    top = {key.value: value for key, value in root.value}
    common = top["x-airflow-common"]
    services = {key.value: value for key, value in top["services"].value}
    for name, node in services.items():
        merged = [value for key, value in node.value if key.tag == "tag:yaml.org,2002:merge"]
        if name in ANCHORED:
            assert merged and merged[0] is common, f"{name} must start with <<: *airflow-common"
        else:
            assert common not in merged, f"{name} is not an Airflow service"


def test_airflow_service_commands(compose):
    for name, command in AIRFLOW_SERVICES.items():
        assert command_words(compose["services"][name]) == command.split(), name


def test_long_running_services_have_healthchecks_and_restart(compose):
    for name in LONG_RUNNING:
        service = compose["services"][name]
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "always", name
    for name in ONE_SHOT_SERVICES:
        assert compose["services"][name].get("restart") == "no", name


def test_airflow_services_wait_for_init_and_backends(compose):
    for name in AIRFLOW_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert compose["services"]["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == (
        "service_healthy"
    )


def test_celery_on_postgres_and_redis(compose):
    for name in ANCHORED:
        env = environment(compose["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.match(
            r"postgresql\+psycopg2://[^@]+@postgres:5432/", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_shared_settings_come_from_config_airflow_env(compose):
    """The same file `make demo` and the tests read; compose overrides only the executor among its keys."""
    shared = {}
    for line in (REPO / "config" / "airflow.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            shared[key.strip()] = value.strip()
    for name in ANCHORED:
        service = compose["services"][name]
        assert service["env_file"] == ["config/airflow.env"], name
        overridden = set(environment(service)) & set(shared)
        assert overridden == {"AIRFLOW__CORE__EXECUTOR"}, f"{name} overrides {overridden}"
    assert shared["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_creator_sync_runtime_settings(compose):
    volumes = compose["volumes"]
    for name in ANCHORED:
        service = compose["services"][name]
        env = environment(service)
        assert env["CREATOR_SYNC_RATE_LIMIT_BACKEND"] == "redis://redis:6379/1", name
        assert env["CREATOR_SYNC_DATA_URL"] == f"file://{DATA_DIR}", name
        assert re.match(r"postgresql://[^@]+@postgres:5432/creator_sync$", env["CREATOR_SYNC_STATE_URL"]), (
            name
        )
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/creator-sync/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/creator-sync/plugins"
        mounts = dict(volume.rsplit(":", 1)[::-1] for volume in service["volumes"])
        assert DATA_DIR in mounts, f"{name} does not mount the data volume"
        assert mounts[DATA_DIR] in volumes, "the data volume must be a named volume"


def test_sandbox_is_profile_gated(compose):
    services = compose["services"]
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert command_words(sandbox) == ["python", "-m", "devtools.sandbox", "--host", "0.0.0.0"]
    for name, service in services.items():
        if name not in ("sandbox", "airflow-sandbox-connections"):
            assert not service.get("profiles"), f"{name} must run without a profile"
            assert "sandbox" not in (service.get("depends_on") or {}), f"{name} must not need the sandbox"
    # the sandboxes answer on the ports of config/connections.json
    ports = {
        json.loads((REPO / "config" / "connections.json").read_text())[c]["host"].rsplit(":", 1)[1]
        for c in ("insightiq_default", "insider_default", "insider_web_push_default")
    }
    assert all(port in json.dumps(sandbox["healthcheck"]) for port in ports)
    # the sandbox connections only with the profile: production's init imports none
    connections = services["airflow-sandbox-connections"]
    assert connections["profiles"] == ["sandbox"]
    assert command_words(connections)[-1] == "--connections-only"
    assert environment(connections)["CREATOR_SYNC_SANDBOX_HOST"] == "sandbox"
    assert environment(connections)["CREATOR_SYNC_CONNECTIONS_FILE"] == "config/connections.json"
    assert environment(services["airflow-init"])["CREATOR_SYNC_CONNECTIONS_FILE"] == ""
    assert connections["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_production_auth_manager_without_a_default_admin_password(compose_raw, compose):
    for name in ANCHORED:
        assert environment(compose["services"][name])["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    init = compose_raw["services"]["airflow-init"]["environment"]
    assert re.fullmatch(r"\$\{AIRFLOW_ADMIN_PASSWORD:\?[^}]+\}", init["AIRFLOW_ADMIN_PASSWORD"])
    assert "users create" in INIT_SCRIPT.read_text()
    assert not any("SIMPLE_AUTH_MANAGER" in key for key in compose_raw["x-airflow-common"]["environment"])


# Settings a user of the deployment may need: passed through from .env to every Airflow container.
PASSED_THROUGH = {
    "CREATOR_SYNC_SCHEDULE": "0 * * * *",
    "CREATOR_SYNC_PUBLIC_BASE_URL": "",
    "CREATOR_SYNC_LOOKBACK_HOURS": "0",
    "CREATOR_SYNC_FETCH_MODE": "incremental",
    "CREATOR_SYNC_DATA_URL": "file:///opt/airflow/data",
    "CREATOR_SYNC_DATA_CONN_ID": "creator_sync_s3",
    "AIRFLOW_CONN_CREATOR_SYNC_S3": "",
    "CREATOR_SYNC_ALERT_CONN_ID": "",
    "AIRFLOW_CONN_CREATOR_SYNC_ALERTS": "",
    "CREATOR_SYNC_DEADLINE_MINUTES": "",
    "CREATOR_SYNC_TASK_TIMEOUT_MINUTES": "180",
    "CREATOR_SYNC_MAX_REJECTION_RATE": "0.2",
    "CREATOR_SYNC_RETAIN_RUN_FILES_DAYS": "14",
    "CREATOR_SYNC_RETAIN_LEDGER_DAYS": "90",
    "CREATOR_SYNC_RETAIN_DEAD_LETTERS_DAYS": "90",
}


def test_project_settings_are_passed_through_with_documented_defaults(compose_raw):
    common = compose_raw["x-airflow-common"]["environment"]
    documented = read_env_example()
    for name, default in PASSED_THROUGH.items():
        assert common.get(name) == f"${{{name}:-{default}}}", f"{name}: {common.get(name)!r}"
        assert name in documented, f".env.example does not list {name}"
    with_values = interpolate(compose_raw, {**example_env(), "CREATOR_SYNC_SCHEDULE": "*/15 * * * *"})
    assert environment(with_values["services"]["airflow-worker"])["CREATOR_SYNC_SCHEDULE"] == "*/15 * * * *"


# --- Secrets ------------------------------------------------------------------------------------------------

SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|API_KEY|PRIVATE", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")


def _all_environments(compose_raw):
    yield "x-airflow-common", compose_raw["x-airflow-common"]["environment"]
    for name, service in compose_raw["services"].items():
        yield name, service.get("environment") or {}


def test_no_literal_secrets(compose_raw, compose_text):
    for owner, env in _all_environments(compose_raw):
        for key, value in env.items():
            value = str(value)
            if SECRET_KEY.search(key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{owner}.{key} must be ${{NAME:?...}}"
                )
            for match in URL_PASSWORD.finditer(value):
                assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", match.group("password")), (
                    f"{owner}.{key} has a literal password in a URL"
                )
    sandbox_secrets = [
        conn["password"] for conn in json.loads((REPO / "config" / "connections.json").read_text()).values()
    ]
    for secret in sandbox_secrets:
        assert secret not in compose_text


def test_required_secrets_are_required(compose_raw):
    references = variables_in(compose_raw)
    assert {name for name, op in references.items() if op == ":?"} == REQUIRED_SECRETS
    for name in REQUIRED_SECRETS:
        env = example_env()
        del env[name]
        with pytest.raises(InterpolationError, match=name):
            interpolate(compose_raw, env)


def test_env_example_documents_every_variable_and_holds_no_secret(compose_raw):
    documented = read_env_example()
    referenced = variables_in(compose_raw)
    missing = set(referenced) - set(documented)
    assert not missing, f".env.example does not document {sorted(missing)}"
    for name in REQUIRED_SECRETS:
        assert documented[name] == "", f".env.example must leave {name} empty"
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()


# --- Init: the same pools and connections files as `make demo` ----------------------------------------------


def _airflow_invocations(text: str) -> set[str]:
    """`airflow <group> <command>` / `airflow <command>` found in shell text."""
    found = set()
    for match in re.finditer(r"(?:^|[\s;&|(])airflow\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?", text, re.M):
        group, sub = match.groups()
        grouped = {"db", "pools", "connections", "celery", "jobs", "users"}
        found.add(f"{group} {sub}" if group in grouped else group)
    return found


def test_init_runs_the_script_that_imports_the_demo_files(compose):
    init = compose["services"]["airflow-init"]
    assert command_words(init) == ["bash", "/opt/creator-sync/scripts/compose-init.sh"]
    assert INIT_SCRIPT.exists() and INIT_SCRIPT.stat().st_mode & 0o111
    script = INIT_SCRIPT.read_text()
    demo = (REPO / "scripts" / "demo.sh").read_text()
    assert "config/connections.json" in script and "config/connections.json" in demo
    # the same pools file: the one the installed package reads (in the image: inside the wheel)
    assert "from creator_sync.settings import pools_file; print(pools_file())" in script
    assert "src/creator_sync/resources/pools.json" in demo
    assert {"db migrate", "pools import", "connections import"} <= _airflow_invocations(script)


def test_every_airflow_subcommand_of_the_deployment_exists(compose):
    used = set()
    for name in AIRFLOW_SERVICES:
        used.add(" ".join(command_words(compose["services"][name])))
    used |= _airflow_invocations(INIT_SCRIPT.read_text())
    for service in compose["services"].values():
        used |= _airflow_invocations(" ".join(map(str, service.get("healthcheck", {}).get("test", []))))
    assert used >= REQUIRED_AIRFLOW_COMMANDS, f"not used: {REQUIRED_AIRFLOW_COMMANDS - used}"
    commands = sorted(used)
    results = run_many([[str(AIRFLOW), *command.split(), "--help"] for command in commands])
    failures = {
        command: (result.stderr or result.stdout)[-800:]
        for command, result in zip(commands, results, strict=True)
        if result.returncode != 0 or "usage:" not in result.stdout.lower()
    }
    assert not failures, failures
    jobs_help = results[commands.index("jobs check")].stdout
    healthchecks = json.dumps([service.get("healthcheck", {}) for service in compose["services"].values()])
    for job_type in re.findall(r"--job-type (\w+)", healthchecks):
        assert job_type in jobs_help, f"`airflow jobs check` has no job type {job_type}"


def test_worker_healthcheck_celery_app_exists(compose):
    check = " ".join(compose["services"]["airflow-worker"]["healthcheck"]["test"])
    module, attribute = re.search(r"--app\s+([\w.]+)\.(\w+)\s", check).groups()
    code = f"import {module} as m; print('app type:', type(m.{attribute}).__name__)"
    result = run([str(VENV_BIN / "python"), "-c", code])
    assert result.returncode == 0 and "app type: Celery" in result.stdout, result.stderr[-800:]


def test_sandbox_command_exists(compose):
    words = command_words(compose["services"]["sandbox"])
    result = run([str(VENV_BIN / words[0]), *words[1:3], "--help"], timeout=60)
    assert result.returncode == 0, (
        f"`{' '.join(words[:3])} --help` fails: the sandbox entry point (devtools/sandbox) is missing or "
        f"broken, so the compose `sandbox` service cannot start:\n{result.stderr[-1500:]}"
    )
    assert "--host" in result.stdout, "the sandbox CLI must accept --host (compose binds it to 0.0.0.0)"


def test_compose_paths_exist_in_the_repository():
    for path in (
        "Dockerfile",
        "config/airflow.env",
        "src/creator_sync/resources/pools.json",
        "config/connections.json",
    ):
        assert (REPO / path).is_file(), path
    assert Path(REPO / "dags").is_dir()
