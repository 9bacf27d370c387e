"""The locks carry a hash for every package (`make lock`), and `make install` syncs the dev lock with
--require-hashes: uv installs nothing whose archive has no locked hash or another one. (The image's install
under the runtime lock is checked in test_dockerfile.py.)"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from deploy_support import REPO, VENV_BIN

LOCKS = ("requirements.lock", "requirements-dev.lock", "requirements-build.lock")
MAKEFILE = REPO / "Makefile"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def requirements(text: str) -> list[str]:
    """The requirement entries of a requirements file, each with its continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]


def unhashed(text: str) -> list[str]:
    """The requirements of a lock that carry no sha256 hash."""
    return [entry.split()[0] for entry in requirements(text) if not HASH.search(entry)]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_package_of_the_locks_has_a_hash(lock):
    text = (REPO / lock).read_text()
    pinned = re.findall(r"^[A-Za-z0-9][\w.-]*==", text, re.M)
    assert len(requirements(text)) == len(pinned) > 0, f"{lock}: the check would not see every package"
    assert unhashed(text) == [], f"{lock} has packages without a hash: run `make lock`"


def test_the_hash_check_names_a_package_without_one():
    lock = (REPO / "requirements.lock").read_text()
    stripped = re.sub(r"^(redis==\S+) \\\n(?:\s+--hash=\S+(?: \\)?\n)+", r"\1\n", lock, flags=re.M)
    assert stripped != lock
    assert unhashed(stripped) == ["redis==" + re.search(r"^redis==(\S+)", lock, re.M).group(1)]


def make_variable(name: str) -> str:
    match = re.search(rf"^{name} := (.*)$", MAKEFILE.read_text(), re.M)
    assert match, f"the Makefile sets no {name}"
    return match.group(1)


def test_make_lock_compiles_with_hashes():
    assert "--generate-hashes" in make_variable("COMPILE").split()
    for lock in LOCKS:
        assert "--generate-hashes" in (REPO / lock).read_text().splitlines()[1].split(), lock


def install_sync_flags(makefile: str | None = None) -> list[str]:
    """The flags of `make install`'s `uv pip sync ... requirements-dev.lock`, with $(BIN)/python as is."""
    text = MAKEFILE.read_text() if makefile is None else makefile
    match = re.search(r"^\t\$\(BIN\)/uv pip sync (.*) requirements-dev\.lock$", text, re.M)
    assert match, "make install does not sync requirements-dev.lock with uv"
    return match.group(1).split()


def test_make_install_syncs_the_dev_lock_requiring_hashes():
    assert "--require-hashes" in install_sync_flags()


# --- what uv does under those flags, offline, with a wheel made here --------------------------------------


def probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel `cs-probe 1.0` (one module), so uv needs no index."""
    files = {
        "cs_probe/__init__.py": b"VALUE = 1\n",
        "cs_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: cs-probe\nVersion: 1.0\n",
        "cs_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}"
        for name, data in files.items()
    ]
    files["cs_probe-1.0.dist-info/RECORD"] = (
        "\n".join([*record, "cs_probe-1.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "cs_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def sync(tmp_path: Path, lock_line: str, flags: list[str]) -> subprocess.CompletedProcess:
    """`uv pip sync` with make install's flags into a new venv, from a folder of local wheels only."""
    venv = tmp_path / f"venv{len(list(tmp_path.glob('venv*')))}"
    env = {**os.environ, "UV_NO_CACHE": "1"}
    subprocess.run(
        [VENV_BIN / "uv", "venv", "-q", "--python", VENV_BIN / "python", venv], check=True, env=env
    )
    lock = tmp_path / "probe.lock"
    lock.write_text(lock_line + "\n")
    flags = [str(venv / "bin" / "python") if flag == "$(BIN)/python" else flag for flag in flags]
    args = [VENV_BIN / "uv", "pip", "sync", *flags, "--no-index", "--find-links", tmp_path / "wheels", lock]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_make_install_flags_refuse_a_package_without_its_locked_hash(tmp_path):
    wheel = probe_wheel(tmp_path / "wheels")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    flags = install_sync_flags()
    assert sync(tmp_path, f"cs-probe==1.0 --hash=sha256:{digest}", flags).returncode == 0
    altered = sync(tmp_path, f"cs-probe==1.0 --hash=sha256:{'0' * 64}", flags)
    assert altered.returncode != 0 and "hash" in altered.stderr.lower(), altered.stderr
    missing = sync(tmp_path, "cs-probe==1.0", flags)
    assert missing.returncode != 0 and "hash" in missing.stderr.lower(), missing.stderr


def test_without_require_hashes_a_package_without_a_hash_would_install(tmp_path):
    """The guard is the flag: the same sync without it installs the unhashed package."""
    probe_wheel(tmp_path / "wheels")
    unguarded = [flag for flag in install_sync_flags() if flag != "--require-hashes"]
    assert sync(tmp_path, "cs-probe==1.0", unguarded).returncode == 0
