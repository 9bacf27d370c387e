"""Shared helpers of the deployment tests: Compose-style interpolation, .env.example, Airflow CLI runs.

No Docker here: the compose file is checked as data (Compose Specification schema, structure, secrets) and
every command it runs is checked to exist in the project's own .venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY_TESTS = Path(__file__).resolve().parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
INIT_SCRIPT = REPO / "scripts" / "compose-init.sh"
DOCKERFILE = REPO / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
AIRFLOW = VENV_BIN / "airflow"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "flower": "celery flower",
}
ANCHORED_SERVICES = {*AIRFLOW_SERVICES, "airflow-init", "airflow-sandbox-connections", "airflow-cli"}
ALL_SERVICES = {"postgres", "redis", *ANCHORED_SERVICES, "sandbox"}
ONE_SHOT_SERVICES = {"airflow-init", "airflow-sandbox-connections", "airflow-cli"}
# Services behind a profile: name -> profile
PROFILED = {
    "sandbox": "sandbox",
    "airflow-sandbox-connections": "sandbox",
    "flower": "flower",
    "airflow-cli": "cli",
}
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

# The secrets docker-compose.yaml takes from .env as compose secrets (files under /run/secrets), never as
# environment: variable in .env -> compose secret name.
REQUIRED_SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "airflow_fernet_key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "airflow_jwt_secret",
    "AIRFLOW__API__SECRET_KEY": "airflow_api_secret_key",
    "POSTGRES_PASSWORD": "postgres_password",
    "REDIS_PASSWORD": "redis_password",
    "CREATOR_SYNC_STATE_PASSWORD": "creator_sync_state_password",
    "AIRFLOW_ADMIN_PASSWORD": "airflow_admin_password",
}
OPTIONAL_SECRETS = {
    "CREATOR_SYNC_INSIDER_CALLBACK_TOKEN": "creator_sync_insider_callback_token",
    "AIRFLOW_CONN_CREATOR_SYNC_S3": "airflow_conn_creator_sync_s3",
    "AIRFLOW_CONN_CREATOR_SYNC_ALERTS": "airflow_conn_creator_sync_alerts",
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, $NAME
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate_string(text: str, env: dict[str, str]) -> str:
    """Compose Specification interpolation of one string (no nesting; `$$` is a literal `$`)."""
    out = []
    for index, part in enumerate(text.split("$$")):
        if index:
            out.append("$")

        def substitute(match: re.Match) -> str:
            name = match.group("braced") or match.group("bare")
            op, arg = match.group("op"), match.group("arg") or ""
            value = env.get(name)
            is_set, is_nonempty = value is not None, bool(value)
            if op in (":-", "-"):
                use_default = not is_nonempty if op == ":-" else not is_set
                return arg if use_default else value
            if op in (":?", "?"):
                missing = not is_nonempty if op == ":?" else not is_set
                if missing:
                    raise InterpolationError(f"{name}: {arg}")
                return value
            if op in (":+", "+"):
                present = is_nonempty if op == ":+" else is_set
                return arg if present else ""
            return value or ""

        out.append(_VARIABLE.sub(substitute, part))
    return "".join(out)


def interpolate(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate_string(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def strings_in(node) -> list[str]:
    """Every string value of a parsed YAML document (what Compose interpolates; comments are not)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in strings_in(item)]
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_in(value)]
    return []


def variables_in(node) -> dict[str, str | None]:
    """Variable name -> its operator (None for plain `${NAME}`) for every reference in a parsed document."""
    found: dict[str, str | None] = {}
    for part in (piece for text in strings_in(node) for piece in text.split("$$")):
        for match in _VARIABLE.finditer(part):
            name = match.group("braced") or match.group("bare")
            found.setdefault(name, match.group("op"))
            if match.group("op") in (":?", "?"):
                found[name] = match.group("op")
    return found


def read_env_example() -> dict[str, str]:
    """NAME -> value for every `NAME=value` or commented `#NAME=value` line of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            values.setdefault(match.group(1), match.group(2))
    return values


def example_env() -> dict[str, str]:
    """The environment of a filled-in .env: .env.example's set values plus a value for each secret."""
    env = {name: value for name, value in read_env_example().items() if value}
    for name in REQUIRED_SECRETS:
        env[name] = f"test-{name.lower()}"
    return env


def airflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="creator-sync-deploy-airflow-home-")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["AIRFLOW__CORE__AUTH_MANAGER"] = FAB_AUTH_MANAGER  # compose's (its CLI has `airflow users`)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, env=airflow_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def run_many(commands: list[list[str]], timeout: float = 180) -> list[subprocess.CompletedProcess]:
    """Run independent commands in parallel (each Airflow CLI start costs a few seconds)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(commands), (os.cpu_count() or 2) * 2))) as pool:
        return list(pool.map(lambda command: run(command, timeout), commands))


# --- Dockerfile ---------------------------------------------------------------------------------------------


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text() if text is None else text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages(text: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM first)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for word, args in instructions(text):
        if word == "FROM":
            name = args.split()[-1] if " AS " in args.upper() else f"stage{len(result)}"
            current = result.setdefault(name, [])
        if current is not None:
            current.append((word, args))
    return result


def build_arg(name: str, text: str | None = None) -> str:
    arg = next(args for word, args in instructions(text) if word == "ARG" and args.startswith(f"{name}="))
    return arg.split("=", 1)[1]


BASE_IMAGE = "apache/airflow:${AIRFLOW_VERSION}-python3.11${AIRFLOW_IMAGE_DIGEST:+@}${AIRFLOW_IMAGE_DIGEST}"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def base_image_problems(text: str | None = None) -> list[str]:
    """Why a stage does not start from the locked Airflow image pinned by its digest ([] = none do)."""
    froms = [args.split()[0] for word, args in instructions(text) if word == "FROM"]
    problems = [f"FROM {image}: not {BASE_IMAGE}" for image in froms if image not in (BASE_IMAGE, "runtime")]
    digest = build_arg("AIRFLOW_IMAGE_DIGEST", text)
    if digest and not DIGEST.fullmatch(digest):
        problems.append(f"AIRFLOW_IMAGE_DIGEST={digest} is not sha256:<64 hex digits>")
    return problems
