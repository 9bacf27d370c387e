"""Dockerfile: the official Airflow image of the locked version, the creator_sync wheel installed on top by
pip under the runtime lock (nothing the image ships is removed), DAGs and plugins; no dev lock, devtools or
tests in the production image."""

from __future__ import annotations

import re

from deploy_support import ANCHORED_SERVICES, REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text() if text is None else text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def locked_version(package: str, lock: str = "requirements.lock") -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", (REPO / lock).read_text(), re.M)
    assert match, f"{package} is not in {lock}"
    return match.group(1)


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


def build_arg(name: str) -> str:
    arg = next(args for word, args in instructions() if word == "ARG" and args.startswith(f"{name}="))
    return arg.split("=", 1)[1]


def test_base_image_is_the_locked_airflow_on_python_311():
    froms = {args.split()[0] for word, args in instructions() if word == "FROM"}
    assert froms == {"apache/airflow:${AIRFLOW_VERSION}-python3.11", "runtime"}
    assert build_arg("AIRFLOW_VERSION") == locked_version("apache-airflow")


WHEEL_INSTALL = re.compile(
    r"\bpip install\b(?=.*\"apache-airflow==\$\{AIRFLOW_VERSION\}\")"
    r"(?=.*creator_sync-\*\.whl\)\[s3,redis,postgres\])"
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
            "no `pip install apache-airflow==$AIRFLOW_VERSION <wheel>[extras] -c requirements.lock`"
        )
    elif not copies or copies[0] > installs[0]:
        problems.append("requirements.lock is not copied before the install")
    problems += [f"removes or bypasses packages: {args}" for _, args in runs if REMOVES_PACKAGES.search(args)]
    problems += [f"editable install: {args}" for _, args in runs if re.search(r"\s-e\s|--editable", args)]
    return problems


def test_installs_the_wheel_on_top_of_the_image_under_the_lock():
    assert wheel_install_problems() == []
    build = " ".join(args for word, args in stages()["build"] if word == "RUN")
    assert re.search(r"\buv build --wheel\b", build)
    uv_version = build_arg("UV_VERSION")
    assert uv_version == locked_version("uv", "requirements-dev.lock")
    assert re.search(rf"^UV_VERSION := {re.escape(uv_version)}$", (REPO / "Makefile").read_text(), re.M)


def test_the_install_check_catches_a_sync_that_removes_the_image_providers():
    text = DOCKERFILE.read_text()
    synced = text.replace(
        "COPY --chown=airflow:0 requirements.lock ./\n",
        "COPY --chown=airflow:0 requirements.lock ./\nRUN uv pip sync --python python requirements.lock\n",
    )
    assert any("removes or bypasses" in problem for problem in wheel_install_problems(synced))
    unlocked = text.replace(" -c requirements.lock", "")
    assert wheel_install_problems(unlocked)


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
