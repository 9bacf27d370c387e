"""devtools/audit.py (`make audit`): pip-audit over the hashed locks against an OSV service; here a stand-in
OSV API on 127.0.0.1 answers (the real one needs network access and is not part of lint or tests)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deploy_support import REPO
from packaging.utils import canonicalize_name

from devtools import audit

LOCK = REPO / "requirements.lock"
ADVISORY = {
    "id": "GHSA-test-0000-0000",
    "aliases": ["CVE-2099-0001"],
    "summary": "a stand-in advisory",
    "affected": [
        {
            "package": {"name": "redis", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
        }
    ],
}


def small_lock(folder: Path, names: tuple[str, ...] = ("redis", "a2wsgi")) -> Path:
    """A lock of a few entries of requirements.lock, hashes and all (a shorter audit)."""
    entries = re.findall(r"^[A-Za-z0-9][^\n]*\\\n(?:[ ]+--hash=[^\n]*\n)+", LOCK.read_text(), re.M)
    lock = folder / "requirements.lock"
    lock.write_text("".join(entry for entry in entries if entry.split("==")[0] in names))
    assert set(locked(lock)) == set(names)
    return lock


def locked(lock: Path = LOCK) -> dict[str, str]:
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9][\w.-]*)==([^\s\\;]+)", lock.read_text(), re.M)
    }


@contextmanager
def osv_api(
    vulnerable: set[str] = frozenset(), failing: set[str] = frozenset()
) -> Iterator[tuple[str, list]]:
    """A stand-in OSV query API: ADVISORY for `vulnerable` packages, 500 for `failing`, none for the rest.
    Yields its URL and the package names it was asked about."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = query["package"]["name"]
            asked.append(name)
            if name in failing:
                self.send_response(500)
                self.end_headers()
                return
            body = json.dumps({"vulns": [ADVISORY]} if name in vulnerable else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_audit_names_a_locked_version_with_an_advisory(capsys):
    versions = locked()
    with osv_api(vulnerable={"redis"}) as (url, asked):
        assert audit.main(["--osv-url", url, str(LOCK)]) == 1
    out = capsys.readouterr().out
    assert f"requirements.lock: {len(versions)} packages, known vulnerabilities: 1" in out
    finding = next(line for line in out.splitlines() if line.startswith(f"  redis=={versions['redis']}: "))
    assert "GHSA-test-0000-0000" in finding and "CVE-2099-0001" in finding
    assert finding.endswith("(fixed in: 99.0)")
    assert sorted(asked) == sorted(versions), "every locked package is asked about, once"


def test_a_lock_without_advisories_passes(capsys, tmp_path):
    lock = small_lock(tmp_path)
    with osv_api() as (url, asked):
        assert audit.main(["--osv-url", url, str(lock)]) == 0
    assert "requirements.lock: 2 packages, known vulnerabilities: 0" in capsys.readouterr().out
    assert sorted(asked) == ["a2wsgi", "redis"]


def test_a_service_that_fails_for_one_package_fails_the_audit(capsys, tmp_path):
    lock = small_lock(tmp_path)
    with osv_api(failing={"redis"}) as (url, _):
        assert audit.main(["--osv-url", url, str(lock)]) == 1
    out = capsys.readouterr().out
    assert "requirements.lock: not audited: requests.exceptions.HTTPError: 500 Server Error" in out
    assert "known vulnerabilities" not in out


def test_an_unreachable_service_fails_the_audit_and_says_which(capsys, tmp_path):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/query"
    assert audit.main(["--osv-url", url, str(small_lock(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "not audited: requests.exceptions.ConnectionError" in out
    assert f"(the audit needs {url} to answer for every locked package)" in out


def test_a_skipped_package_or_an_empty_report_is_no_audit():
    report = {
        "dependencies": [
            {"name": "redis", "version": "6.4.0", "vulns": []},
            {"name": "a2wsgi", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    skipped = audit.from_report(LOCK, report)
    assert skipped.error == "not every package was audited: a2wsgi (Dependency not found on PyPI)"
    assert audit.from_report(LOCK, {"dependencies": []}).error == "no package was audited"
    clean = audit.from_report(LOCK, {"dependencies": report["dependencies"][:1]})
    assert (clean.error, clean.audited, clean.findings) == (None, 1, ())


def test_the_audit_is_strict_reads_the_locks_by_hash_and_runs_outside_lint_and_test():
    args = audit.command(LOCK, Path("report.json"), "osv", None, Path("cache"))
    assert {"--strict", "--disable-pip", "--require-hashes"} <= set(args)
    makefile = (REPO / "Makefile").read_text()
    locks = ["requirements.lock", "requirements-dev.lock", "requirements-build.lock"]
    assert [path.name for path in audit.LOCKS] == locks
    assert re.findall(r"-o (\S+\.lock)$", makefile, re.M) == locks, "make lock writes the locks audited"
    assert re.search(r"^audit: install\b.*\n\t\$\(BIN\)/python -m devtools\.audit$", makefile, re.M)
    for target in ("lint", "test", "test-fast"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
        assert "audit" not in recipe, f"make {target} needs the network for the audit"
