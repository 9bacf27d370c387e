"""Dockerfile: the official Airflow image of the locked version, the lock installed exactly, then the repo."""

from __future__ import annotations

import re

from deploy_support import ANCHORED_SERVICES, REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def locked_version(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M)
    assert match, f"{package} is not in requirements.lock"
    return match.group(1)


def test_base_image_is_the_locked_airflow_on_python_311():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert froms == [f"apache/airflow:{locked_version('apache-airflow')}-python3.11"]


def test_installs_exactly_the_lock_then_the_repository_without_dependencies():
    steps = instructions()
    runs = [(index, args) for index, (word, args) in enumerate(steps) if word == "RUN"]
    copies = [(index, args) for index, (word, args) in enumerate(steps) if word == "COPY"]

    copy_lock = next(i for i, args in copies if args.split()[-2:] == ["requirements.lock", "./"])
    sync = next(i for i, args in runs if re.search(r"\buv pip sync\b.*\brequirements\.lock\b", args))
    copy_repo = next(i for i, args in copies if args.split()[-2:] == [".", "./"])
    editable = next(i for i, args in runs if re.search(r"\bpip install\b.*--no-deps -e \.(\s|$)", args))
    assert copy_lock < sync < copy_repo < editable

    uv_arg = next(args for word, args in steps if word == "ARG" and args.startswith("UV_VERSION="))
    uv_version = uv_arg.split("=", 1)[1]
    assert uv_version == locked_version("uv")
    assert re.search(rf"^UV_VERSION := {re.escape(uv_version)}$", (REPO / "Makefile").read_text(), re.M)


def test_image_points_airflow_at_the_repository_copy():
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "CREATOR_SYNC_HOME=/opt/creator-sync" in env
    assert "AIRFLOW__CORE__DAGS_FOLDER=${CREATOR_SYNC_HOME}/dags" in env
    assert "AIRFLOW__CORE__PLUGINS_FOLDER=${CREATOR_SYNC_HOME}/plugins" in env


def test_build_context_keeps_secrets_and_local_state_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", ".airflow", ".run"):
        assert entry in ignored, entry
    assert "!.env.example" in ignored


def test_every_airflow_service_builds_this_dockerfile(compose):
    for name in [*ANCHORED_SERVICES, "sandbox"]:
        build = compose["services"][name]["build"]
        assert build == {"context": ".", "dockerfile": "Dockerfile"}, name
