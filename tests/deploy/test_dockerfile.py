"""Dockerfile: the official Airflow image of the locked version, the creator_sync wheel installed on top by
pip under the runtime lock (nothing the image ships is removed), DAGs and plugins; no dev lock, devtools or
tests in the production image."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import (
    ANCHORED_SERVICES,
    BASE_IMAGE,
    DOCKERFILE,
    REPO,
    VENV_BIN,
    base_image_problems,
    build_arg,
    instructions,
    stages,
)


def locked_version(package: str, lock: str = "requirements.lock") -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", (REPO / lock).read_text(), re.M)
    assert match, f"{package} is not in {lock}"
    return match.group(1)


def test_base_image_is_the_locked_airflow_on_python_311_pinned_by_digest():
    assert base_image_problems() == []
    assert sum(word == "FROM" and args.startswith(BASE_IMAGE) for word, args in instructions()) == 2
    assert build_arg("AIRFLOW_VERSION") == locked_version("apache-airflow")


def test_the_base_image_check_catches_a_stage_by_tag_alone_and_a_malformed_digest():
    text = DOCKERFILE.read_text()
    by_tag = text.replace(
        BASE_IMAGE + " AS runtime", "apache/airflow:${AIRFLOW_VERSION}-python3.11 AS runtime"
    )
    assert base_image_problems(by_tag) == [
        f"FROM apache/airflow:${{AIRFLOW_VERSION}}-python3.11: not {BASE_IMAGE}"
    ]
    pinned = re.sub(
        r"^ARG AIRFLOW_IMAGE_DIGEST=.*$", "ARG AIRFLOW_IMAGE_DIGEST=sha256:" + "ab" * 32, text, flags=re.M
    )
    assert base_image_problems(pinned) == []
    short = re.sub(r"^ARG AIRFLOW_IMAGE_DIGEST=.*$", "ARG AIRFLOW_IMAGE_DIGEST=sha256:abc", text, flags=re.M)
    assert base_image_problems(short) == ["AIRFLOW_IMAGE_DIGEST=sha256:abc is not sha256:<64 hex digits>"]


WHEEL_REQUIREMENT = "/tmp/dist/creator-sync.txt"
WHEEL_INSTALL = re.compile(
    r"\bpip install\b(?=.*\s--require-hashes\b)(?=.*\"apache-airflow==\$\{AIRFLOW_VERSION\}\")"
    rf"(?=.*\s-r {re.escape(WHEEL_REQUIREMENT)}\s)"
    r"(?=.*\s-c requirements\.lock\b)"
)
REMOVES_PACKAGES = re.compile(r"\bpip sync\b|\bpip uninstall\b|--no-deps\b|--force-reinstall\b|--exact\b")


def wheel_install_problems(text: str | None = None) -> list[str]:
    """Why the runtime stage does not install the wheel on top of the image under the lock ([] = it does)."""
    steps = stages(text)["runtime"]
    runs = [(index, args) for index, (word, args) in enumerate(steps) if word == "RUN"]
    copies = [
        index
        for index, (word, args) in enumerate(steps)
        if word == "COPY" and args.split()[-2:] == ["requirements.lock", "./"]
    ]
    problems = []
    installs = [index for index, args in runs if WHEEL_INSTALL.search(args)]
    if not installs:
        problems.append(
            "no `pip install --require-hashes apache-airflow==$AIRFLOW_VERSION -r <wheel requirement>"
            " -c requirements.lock`"
        )
    elif not copies or copies[0] > installs[0]:
        problems.append("requirements.lock is not copied before the install")
    problems += [f"removes or bypasses packages: {args}" for _, args in runs if REMOVES_PACKAGES.search(args)]
    problems += [f"editable install: {args}" for _, args in runs if re.search(r"\s-e\s|--editable", args)]
    return problems


BUILD_LOCK = "requirements-build.lock"
BUILD_TOOLS = re.compile(rf"\bpip install\b(?=.*\s--require-hashes\b)(?=.*\s-r {re.escape(BUILD_LOCK)}$)")
WHEEL_BUILD = re.compile(
    rf"\buv build --wheel\b(?=.*\s--build-constraints {re.escape(BUILD_LOCK)}\s)(?=.*\s--require-hashes\s)"
)


def build_stage_problems(text: str | None = None) -> list[str]:
    """Why the build stage's tools are not hash-checked from requirements-build.lock ([] = they are)."""
    runs = [args for word, args in stages(text)["build"] if word == "RUN"]
    problems = []
    if not any(BUILD_TOOLS.search(args) for args in runs):
        problems.append(f"uv is not installed with `pip install --require-hashes ... -r {BUILD_LOCK}`")
    if not any(WHEEL_BUILD.search(args) for args in runs):
        problems.append(
            f"the wheel is not built with `uv build --build-constraints {BUILD_LOCK} --require-hashes`"
        )
    return problems


def test_installs_the_wheel_on_top_of_the_image_under_the_lock():
    assert wheel_install_problems() == []
    assert build_stage_problems() == []
    uv_version = locked_version("uv", BUILD_LOCK)
    assert uv_version == locked_version("uv", "requirements-dev.lock")
    assert re.search(rf"^UV_VERSION := {re.escape(uv_version)}$", (REPO / "Makefile").read_text(), re.M)


def test_the_build_stage_check_catches_unchecked_build_tools():
    text = DOCKERFILE.read_text()
    unpinned = text.replace(f"--require-hashes --target /tmp/uv -r {BUILD_LOCK}", '--target /tmp/uv "uv"')
    assert build_stage_problems(unpinned) == [
        f"uv is not installed with `pip install --require-hashes ... -r {BUILD_LOCK}`"
    ]
    unconstrained = text.replace(f" --build-constraints {BUILD_LOCK}", "")
    assert build_stage_problems(unconstrained) == [
        f"the wheel is not built with `uv build --build-constraints {BUILD_LOCK} --require-hashes`"
    ]


def test_the_install_check_catches_a_sync_that_removes_the_image_providers():
    text = DOCKERFILE.read_text()
    synced = text.replace(
        "COPY --chown=airflow:0 requirements.lock ./\n",
        "COPY --chown=airflow:0 requirements.lock ./\nRUN uv pip sync --python python requirements.lock\n",
    )
    assert any("removes or bypasses" in problem for problem in wheel_install_problems(synced))
    unlocked = text.replace(" -c requirements.lock", "")
    assert wheel_install_problems(unlocked)


def test_the_install_check_catches_an_install_without_require_hashes():
    unchecked = DOCKERFILE.read_text().replace(" --require-hashes", "")
    assert wheel_install_problems(unchecked)[0].startswith("no `pip install --require-hashes")


# --- The build stage's wheel and the runtime install, run here (no Docker) ---------------------------------


def run_build_stage(tmp_path: Path, text: str | None = None, build_lock: str | None = None):
    """Run the build stage's RUN that builds the wheel and writes its requirement, in a copy of what the stage
    copies (`build_lock` for requirements-build.lock when given), with this venv's uv (the locked version)
    and tmp_path/dist for /tmp/dist."""
    steps = stages(text)["build"]
    context, dist = tmp_path / "build", tmp_path / "dist"
    context.mkdir(parents=True)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for word, args in steps:
        for source in [a for a in args.split()[:-1] if not a.startswith("--")] if word == "COPY" else []:
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, context / source, ignore=junk)
            else:
                shutil.copy(REPO / source, context / source)
    if build_lock is not None:
        (context / BUILD_LOCK).write_text(build_lock)
    script = next(args for word, args in steps if word == "RUN" and "uv build" in args)
    script = script.replace("/tmp/uv/bin/uv", str(VENV_BIN / "uv")).replace("/tmp/dist", str(dist))
    return subprocess.run(["sh", "-c", script], cwd=context, capture_output=True, text=True, timeout=180)


def build_wheel(tmp_path: Path, text: str | None = None) -> Path:
    """The build stage's wheel and requirement: their folder (for /tmp/dist)."""
    result = run_build_stage(tmp_path, text)
    assert result.returncode == 0, result.stderr
    return tmp_path / "dist"


def test_the_build_stage_refuses_a_build_backend_without_its_locked_hash(tmp_path):
    lock = (REPO / BUILD_LOCK).read_text()
    backend = re.search(r"^setuptools==\S+ \\\n(?:\s+--hash=\S+(?: \\)?\n)+", lock, re.M).group(0)
    altered = lock.replace(backend, re.sub(r"[0-9a-f]{64}", "e" * 64, backend))
    refused = run_build_stage(tmp_path / "guarded", build_lock=altered)
    assert refused.returncode != 0
    assert "Hash mismatch for `setuptools==" in refused.stderr
    # the guard is the hashed build constraint: without it the build takes any setuptools
    unguarded = DOCKERFILE.read_text().replace(f" --build-constraints {BUILD_LOCK}", "")
    unguarded = unguarded.replace(" --require-hashes --out-dir", " --out-dir")
    built = run_build_stage(tmp_path / "unguarded", unguarded, build_lock=altered)
    assert built.returncode == 0, built.stderr


def install_dry_run(
    dist: Path, text: str | None = None, lock: Path = REPO / "requirements.lock"
) -> subprocess.CompletedProcess:
    """The runtime stage's pip install (in `lock`'s folder) as a dry run into this venv, which holds the
    locked set as the image does, offline: only the wheel of `dist` is new."""
    run = next(args for word, args in stages(text)["runtime"] if word == "RUN" and "pip install" in args)
    command = run[run.index("pip install") :].split(" && ")[0]
    command = command.replace("${AIRFLOW_VERSION}", build_arg("AIRFLOW_VERSION")).replace(
        "/tmp/dist", str(dist)
    )
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_NO_INDEX": "1"}
    args = [sys.executable, "-m", *shlex.split(command), "--dry-run"]
    return subprocess.run(
        args, cwd=lock.parent, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("image"))


def test_the_build_stage_writes_the_wheel_with_its_extras_and_sha256(built):
    wheel = next(built.glob("creator_sync-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    expected = f"creator-sync[s3,redis,postgres] @ file://{wheel} --hash=sha256:{digest}"
    assert (built / Path(WHEEL_REQUIREMENT).name).read_text().strip() == expected
    result = install_dry_run(built)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_install_refuses_a_wheel_changed_after_the_build(built, tmp_path):
    changed = tmp_path / "dist"
    shutil.copytree(built, changed)
    requirement = (changed / Path(WHEEL_REQUIREMENT).name).read_text()
    (changed / Path(WHEEL_REQUIREMENT).name).write_text(requirement.replace(str(built), str(changed)))
    with next(changed.glob("creator_sync-*.whl")).open("ab") as wheel:
        wheel.write(b"\0")
    result = install_dry_run(changed)
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr


def test_the_runtime_install_refuses_a_wheel_without_a_hash(tmp_path):
    text = re.sub(r" --hash=sha256:\$\([^)]*\)", "", DOCKERFILE.read_text())
    assert text != DOCKERFILE.read_text()
    dist = build_wheel(tmp_path, text)
    assert "--hash" not in (dist / Path(WHEEL_REQUIREMENT).name).read_text()
    refused = install_dry_run(dist, text)
    assert refused.returncode != 0
    assert "Hashes are required in --require-hashes mode" in refused.stderr


def test_require_hashes_refuses_what_a_lock_without_hashes_would_let_through(tmp_path):
    """A lock compiled without hashes turns pip's hash checking off; --require-hashes keeps it on."""
    text = re.sub(r" --hash=sha256:\$\([^)]*\)", "", DOCKERFILE.read_text())
    dist = build_wheel(tmp_path, text)
    plain = tmp_path / "requirements.lock"
    lock = (REPO / "requirements.lock").read_text()
    plain.write_text(re.sub(r" \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", "\n", lock))
    assert "--hash" not in plain.read_text() and len(plain.read_text().splitlines()) > 200
    refused = install_dry_run(dist, text, plain)
    assert refused.returncode != 0
    assert "Hashes are required in --require-hashes mode" in refused.stderr
    unguarded = install_dry_run(dist, text.replace(" --require-hashes", ""), plain)
    assert unguarded.returncode == 0, unguarded.stderr


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
    for name in ANCHORED_SERVICES:
        build = compose["services"][name]["build"]
        assert build == {"context": ".", "dockerfile": "Dockerfile"}, name  # the last stage: production
    assert compose["services"]["sandbox"]["build"] == {
        "context": ".",
        "dockerfile": "Dockerfile",
        "target": "sandbox",
    }
    assert (
        compose["services"]["sandbox"]["image"] != compose["services"][sorted(ANCHORED_SERVICES)[0]]["image"]
    )


def production_copies(text: str | None = None) -> list[str]:
    """Sources of every COPY that ends up in the production image (the last stage and the stages it is built
    from; COPY --from and bind mounts of the build stage bring only the wheel and uv)."""
    all_stages = stages(text)
    names = list(all_stages)
    chain, name = [], names[-1]
    while name in all_stages:
        chain.append(name)
        name = all_stages[name][0][1].split()[0]
    sources = []
    for stage in chain:
        for word, args in all_stages[stage]:
            if word == "COPY" and "--from=" not in args:
                sources += [a for a in args.split()[:-1] if not a.startswith("--")]
    return sources


def test_production_image_has_no_dev_lock_devtools_or_tests():
    assert list(stages())[-1] == "production"
    sources = production_copies()
    assert sources, "no COPY found: the check would be vacuous"
    for forbidden in ("requirements-dev.lock", "requirements-dev.txt", "devtools/", "tests/", "."):
        assert forbidden not in sources, f"the production image copies {forbidden}"
    for word, args in stages()["runtime"]:
        if word == "RUN":
            assert "requirements-dev" not in args and "devtools" not in args, args


def test_the_production_check_catches_a_copy_of_the_whole_repository():
    broken = DOCKERFILE.read_text().replace(
        "COPY --chown=airflow:0 dags/ ./dags/", "COPY --chown=airflow:0 . ./"
    )
    assert "." in production_copies(broken)
    assert "devtools/" in production_copies(DOCKERFILE.read_text() + "\nCOPY devtools/ ./devtools/\n")


def test_build_context_leaves_out_tests_and_dev_files():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in ("tests", "docs", "requirements-dev.lock"):
        assert entry in ignored, entry
    assert "devtools" not in ignored  # the sandbox stage copies it
