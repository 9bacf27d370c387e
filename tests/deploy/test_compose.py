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
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import jsonschema
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
    OPTIONAL_SECRETS,
    PROFILED,
    REPO,
    REQUIRED_SECRETS,
    VENV_BIN,
    example_env,
    interpolate,
    read_env_example,
    run,
    run_many,
    variables_in,
)

COMPOSE_SPEC = DEPLOY_TESTS / "compose-spec.json"
SECRETS_ENV = REPO / "scripts" / "secrets-env.sh"
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
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://default@redis:6379/0"
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
        assert env["CREATOR_SYNC_RATE_LIMIT_BACKEND"] == "redis://default@redis:6379/1", name
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
        assert service.get("profiles", []) == ([PROFILED[name]] if name in PROFILED else []), name
        if name not in ("sandbox", "airflow-sandbox-connections"):
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
    assert "airflow_admin_password" in compose_raw["services"]["airflow-init"]["secrets"]
    assert "airflow_admin_password" not in compose_raw["x-airflow-common"]["secrets"]  # the init's alone
    assert "users create" in INIT_SCRIPT.read_text()
    assert not any("SIMPLE_AUTH_MANAGER" in key for key in compose_raw["x-airflow-common"]["environment"])


def airflow_options(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """AIRFLOW__SECTION__KEY -> (section, key) for the Airflow options an environment sets."""
    options = {}
    for name in env:
        parts = name.split("__")
        if len(parts) == 3 and parts[0] == "AIRFLOW" and not parts[2].endswith(("_CMD", "_SECRET")):
            options[name] = (parts[1].lower(), parts[2].lower())
    return options


def unknown_airflow_options(env: dict[str, str]) -> list[str]:
    from airflow.configuration import conf

    known = conf.configuration_description  # Airflow's and its installed providers' options
    return sorted(
        name
        for name, (section, key) in airflow_options(env).items()
        if key not in known.get(section, {}).get("options", {})
    )


def shared_env() -> dict[str, str]:
    shared = {}
    for line in (REPO / "config" / "airflow.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            shared[key.strip()] = value.strip()
    return shared


def test_production_containers_get_no_demo_auth_and_only_options_airflow_has(compose_raw):
    shared = shared_env()
    assert not [key for key in shared if "SIMPLE_AUTH_MANAGER" in key], "demo auth in config/airflow.env"
    assert unknown_airflow_options({**shared, **compose_raw["x-airflow-common"]["environment"]}) == []
    # the check can fail: an option Airflow 3.3 no longer has
    assert unknown_airflow_options({"AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30"}) == [
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL"
    ]


def settings_not_passed(common_env: dict) -> list[str]:
    """creator-sync settings the Airflow containers do not get: each is in the common environment, or a
    compose secret of the same name when it is a secret."""
    from creator_sync.settings import SECRET_FIELDS, Settings

    secrets = set(yaml.safe_load((REPO / "docker-compose.yaml").read_text())["secrets"])
    missing = []
    for name in Settings.model_fields:
        env = Settings.env_name(name)
        secret_type = "SecretStr" in str(Settings.model_fields[name].annotation)
        if (secret_type and env.lower() not in secrets) or (not secret_type and env not in common_env):
            missing.append(env)
    assert "state_url" in SECRET_FIELDS  # its password comes from secrets-env.sh, the URL itself is passed
    return missing


def test_compose_passes_every_setting(compose_raw):
    common = compose_raw["x-airflow-common"]["environment"]
    assert settings_not_passed(common) == []
    # the check can fail: a setting left out of compose
    reduced = {k: v for k, v in common.items() if k != "CREATOR_SYNC_RATE_LIMIT_MARGIN"}
    assert settings_not_passed(reduced) == ["CREATOR_SYNC_RATE_LIMIT_MARGIN"]
    # .env reaches every setting: empty defaults are the settings module's, not a second copy here
    with_values = interpolate(compose_raw, {**example_env(), "CREATOR_SYNC_RATE_LIMIT_MARGIN": "0.05"})
    assert environment(with_values["services"]["airflow-worker"])["CREATOR_SYNC_RATE_LIMIT_MARGIN"] == "0.05"


def test_settings_defaults_live_in_the_settings_module_only(compose_raw):
    """A setting passed as ${NAME:-} (empty = the module's default); the few compose fixes are listed."""
    compose_values = {
        "CREATOR_SYNC_DATA_URL",
        "CREATOR_SYNC_DATA_CONN_ID",
        "CREATOR_SYNC_STATE_URL",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND",
        "CREATOR_SYNC_UPSERT_MAX_USERS",
    }
    for name, value in compose_raw["x-airflow-common"]["environment"].items():
        if name.startswith("CREATOR_SYNC_") and name not in compose_values:
            assert value == f"${{{name}:-}}", f"{name}: {value!r}"


# --- Secrets ------------------------------------------------------------------------------------------------

SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|API_KEY|PRIVATE", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")


def _all_environments(compose_raw):
    yield "x-airflow-common", compose_raw["x-airflow-common"]["environment"]
    for name, service in compose_raw["services"].items():
        yield name, service.get("environment") or {}


def test_no_secret_in_any_environment(compose, compose_text):
    """Secrets reach the containers as compose secrets: `docker inspect` shows environment, none is there."""
    for owner, env in _all_environments(compose):
        for key, value in env.items():
            if key in ("AIRFLOW_ADMIN_USERNAME",):
                continue
            assert not SECRET_KEY.search(key) or key.endswith("_FILE"), f"{owner}.{key} is a secret in env"
            assert not URL_PASSWORD.search(str(value)), f"{owner}.{key} has a password in a URL"
    sandbox_secrets = [
        conn["password"] for conn in json.loads((REPO / "config" / "connections.json").read_text()).values()
    ]
    for secret in sandbox_secrets:
        assert secret not in compose_text


def test_every_secret_comes_from_env_as_a_compose_secret(compose_raw):
    declared = compose_raw["secrets"]
    for variable, secret in {**REQUIRED_SECRETS, **OPTIONAL_SECRETS}.items():
        assert declared[secret] == {"environment": variable}, secret
    assert set(declared) == set(REQUIRED_SECRETS.values()) | set(OPTIONAL_SECRETS.values())
    mounted = set(compose_raw["x-airflow-common"]["secrets"])
    assert mounted == set(declared) - {"airflow_admin_password"}
    assert compose_raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )


def test_the_entry_point_turns_every_secret_into_the_process_settings(compose):
    script = SECRETS_ENV.read_text()
    for name in ANCHORED:
        assert compose["services"][name]["entrypoint"] == [
            "/usr/bin/dumb-init",
            "--",
            "/opt/creator-sync/scripts/secrets-env.sh",
        ], name
    for variable, secret in REQUIRED_SECRETS.items():
        assert re.search(rf"\b{secret} {variable}\b", script), f"secrets-env.sh does not read {secret}"
    for url in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND",
        "CREATOR_SYNC_STATE_URL",
    ):
        assert re.search(rf"^with_password {url} \w+_password ", script, re.M), url
    # healthchecks run through `docker exec`, outside the entry point: those that need a secret wrap it
    for name, service in compose["services"].items():
        check = " ".join(map(str, service.get("healthcheck", {}).get("test", [])))
        if "airflow " in check or "celery " in check:
            assert "secrets-env.sh --exec" in check, name


def test_the_entry_point_adds_passwords_and_refuses_a_missing_secret(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for secret in REQUIRED_SECRETS.values():
        (secrets / secret).write_text(f"pw-{secret}\n")
    script = SECRETS_ENV.read_text().replace("/run/secrets", str(secrets))
    (tmp_path / "secrets-env.sh").write_text(script)
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow@postgres:5432/airflow",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql://airflow@postgres:5432/airflow",
        "AIRFLOW__CELERY__BROKER_URL": "redis://default@redis:6379/0",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": "redis://default@redis:6379/1",
        "CREATOR_SYNC_STATE_URL": "postgresql://creator_sync@postgres:5432/creator_sync",
    }
    command = ["bash", str(tmp_path / "secrets-env.sh"), "--exec", "env"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert out["CREATOR_SYNC_STATE_URL"] == (
        "postgresql://creator_sync:pw-creator_sync_state_password@postgres:5432/creator_sync"
    )
    assert out["AIRFLOW__CELERY__BROKER_URL"] == "redis://default:pw-redis_password@redis:6379/0"
    assert out["AIRFLOW__CORE__FERNET_KEY"] == "pw-airflow_fernet_key"
    (secrets / "redis_password").write_text("")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "set REDIS_PASSWORD in .env" in result.stderr


def test_the_state_db_has_its_own_role_and_redis_a_password(compose, compose_raw):
    env = environment(compose["services"]["airflow-worker"])
    state_user = re.match(r"postgresql://([^@:]+)@", env["CREATOR_SYNC_STATE_URL"]).group(1)
    metadata_user = re.match(r"postgresql\+psycopg2://([^@:]+)@", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert state_user != metadata_user.group(1), "the state DB must not use the Airflow superuser"
    assert "NOSUPERUSER" in INIT_SCRIPT.read_text() and "OWNER" in INIT_SCRIPT.read_text()
    redis = compose_raw["services"]["redis"]
    assert "--requirepass" in " ".join(redis["command"]) and redis["secrets"] == ["redis_password"]
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])


def parse_duration(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text)):
        total += float(number) * units[unit]
    return total


def grace_floor() -> float:
    """One upsert batch in flight: every attempt of the longest request with backoff, then the settle wait
    and every Profile API round of a lost answer (creator_sync.pipeline.settle)."""
    from creator_sync.http.client import DEFAULT_TIMEOUT, RetrySettings
    from creator_sync.pipeline.settle import SETTLE_MAX_S, ProbeSettings

    retry = RetrySettings()
    request = retry.max_attempts * DEFAULT_TIMEOUT.read
    backoff = sum(min(retry.backoff_max, retry.backoff_initial * 2**i) + retry.jitter for i in range(4))
    return request + backoff + ProbeSettings(settle_s=SETTLE_MAX_S).total_wait_s


def test_the_worker_stop_grace_period_covers_a_batch_and_its_settle_time(compose):
    worker = compose["services"]["airflow-worker"]
    grace = parse_duration(worker["stop_grace_period"])
    assert grace >= grace_floor() > 200, (grace, grace_floor())
    assert environment(worker)["DUMB_INIT_SETSID"] == "0"  # the warm shutdown reaches Celery
    assert parse_duration("10s") < grace_floor()  # compose's default would not


def memory_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", str(text).lower()).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]


# `make bench` at 100k creators (docs/performance.md): the transform task, four account shards, one
# supervisor per running task, the Celery worker.
BENCH_WORKER_PEAK_MB = 1172 + 4 * 530 + 5 * 162 + 300


def test_every_long_running_service_has_a_memory_limit_sized_from_the_bench(compose):
    for name in LONG_RUNNING | {"airflow-init"}:
        assert memory_bytes(compose["services"][name]["mem_limit"]) >= 256 * 2**20, name
    assert memory_bytes(compose["services"]["airflow-worker"]["mem_limit"]) >= BENCH_WORKER_PEAK_MB * 2**20


def test_flower_and_the_cli_are_profiles(compose):
    assert compose["services"]["flower"]["profiles"] == ["flower"]
    assert command_words(compose["services"]["flower"]) == ["celery", "flower"]
    assert compose["services"]["airflow-cli"]["profiles"] == ["cli"]


def test_images_carry_the_package_version(compose):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name in ANCHORED:
        assert compose["services"][name]["image"] == f"creator-sync:{version}", name
    assert compose["services"]["sandbox"]["image"] == f"creator-sync-sandbox:{version}"


def test_env_example_documents_every_variable_and_leaves_secrets_empty(compose_raw):
    documented = read_env_example()
    referenced = set(variables_in(compose_raw)) | {s["environment"] for s in compose_raw["secrets"].values()}
    from creator_sync.settings import Settings

    settings = {Settings.env_name(n) for n in Settings.model_fields}
    missing = referenced - set(documented) - settings  # settings are documented in docs/settings.md
    assert not missing, f".env.example does not document {sorted(missing)}"
    for name in {**REQUIRED_SECRETS, **OPTIONAL_SECRETS}:
        assert documented[name] == "", f".env.example must leave {name} empty"
    assert "docs/settings.md" in (REPO / ".env.example").read_text()
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
    assert "include/creator_sync/resources/pools.json" in demo
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
        "include/creator_sync/resources/pools.json",
        "config/connections.json",
    ):
        assert (REPO / path).is_file(), path
    assert Path(REPO / "dags").is_dir()


def test_the_connection_test_button_is_enabled_in_the_demo_only(compose_raw):
    """Airflow disables the UI's connection Test button by default; the demo enables it, compose does not."""
    from creator_sync.provider import get_provider_info

    assert 'export AIRFLOW__CORE__TEST_CONNECTION="Enabled"' in (REPO / "scripts" / "env.sh").read_text()
    assert "AIRFLOW__CORE__TEST_CONNECTION" not in {
        **shared_env(),
        **compose_raw["x-airflow-common"]["environment"],
    }
    for conn in get_provider_info()["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(__import__(module, fromlist=[name]), name)
        assert callable(getattr(hook, "test_connection", None)), conn["connection-type"]
        assert "_probe" in vars(hook), f"{conn['connection-type']}: its hook has no probe of its own"
