"""Audit the locks for known vulnerabilities: pip-audit asks an advisory service about every locked version of
requirements.lock (what the image installs), requirements-dev.lock (what `make install` installs) and
requirements-build.lock (what builds the image's wheel).

    python -m devtools.audit                 (make audit)
    python -m devtools.audit --service pypi  (PyPI's JSON API instead of OSV)

The default service is OSV (api.osv.dev), which carries the Python Packaging Advisory Database and the GitHub
advisories of PyPI packages. The audit needs network access to it, so it is not part of `make lint` or
`make test`. It is strict: a package the service gives no answer for fails the audit instead of being
skipped, and so does a service that cannot be reached; an audit that checked nothing never passes.
Exit status: 0 no known vulnerability, 1 findings (listed) or no audit (the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCKS = (REPO / "requirements.lock", REPO / "requirements-dev.lock", REPO / "requirements-build.lock")
SERVICE_HOSTS = {"osv": "api.osv.dev", "pypi": "pypi.org"}
# `requests.exceptions.ConnectionError: ...` or pip-audit's `ERROR:pip_audit._cli:...`
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception): |ERROR:)")


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    ids: tuple[str, ...]
    fixed_in: tuple[str, ...]

    def line(self) -> str:
        fixed = ", ".join(self.fixed_in) or "no fixed version"
        return f"  {self.package}=={self.version}: {', '.join(self.ids)} (fixed in: {fixed})"


@dataclass(frozen=True)
class Audit:
    lock: Path
    audited: int
    findings: tuple[Finding, ...]
    error: str | None = None


def command(lock: Path, report: Path, service: str, osv_url: str | None, cache_dir: Path) -> list[str]:
    args = [sys.executable, "-m", "pip_audit", "--strict", "--disable-pip", "--require-hashes"]
    args += ["--vulnerability-service", service, "--requirement", str(lock), "--format", "json"]
    args += ["--output", str(report), "--progress-spinner", "off", "--cache-dir", str(cache_dir)]
    return args + (["--osv-url", osv_url] if osv_url else [])


def findings(report: dict) -> tuple[Finding, ...]:
    return tuple(
        Finding(
            dep["name"], dep["version"], (vuln["id"], *vuln.get("aliases", [])), tuple(vuln["fix_versions"])
        )
        for dep in report["dependencies"]
        for vuln in dep.get("vulns", [])
    )


def from_report(lock: Path, report: dict) -> Audit:
    """The audit of one lock from pip-audit's JSON report; a skipped package makes it no audit."""
    skipped = [
        f"{dep['name']} ({dep['skip_reason']})" for dep in report["dependencies"] if "skip_reason" in dep
    ]
    if skipped:
        return Audit(lock, 0, (), f"not every package was audited: {'; '.join(skipped)}")
    if not report["dependencies"]:
        return Audit(lock, 0, (), "no package was audited")
    return Audit(lock, len(report["dependencies"]), findings(report))


def failure(stderr: str, returncode: int) -> str:
    """The telling line of a failed pip-audit run: its last exception with a message, else its last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    return (raised or lines or [f"pip-audit exited {returncode}"])[-1]


def audit(lock: Path, service: str = "osv", osv_url: str | None = None, timeout: float = 900) -> Audit:
    with tempfile.TemporaryDirectory(prefix="creator-sync-audit-") as tmp:
        report = Path(tmp) / "report.json"
        args = command(lock, report, service, osv_url, Path(tmp) / "cache")
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if not report.exists():
            host = osv_url or SERVICE_HOSTS[service]
            reason = failure(result.stderr, result.returncode)
            return Audit(lock, 0, (), f"{reason} (the audit needs {host} to answer for every locked package)")
        return from_report(lock, json.loads(report.read_text()))


def summary(result: Audit) -> str:
    if result.error:
        return f"{result.lock.name}: not audited: {result.error}"
    head = f"{result.lock.name}: {result.audited} packages, known vulnerabilities: {len(result.findings)}"
    return "\n".join([head, *(finding.line() for finding in result.findings)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service", choices=sorted(SERVICE_HOSTS), default="osv")
    parser.add_argument("--osv-url", help="another OSV API address (a mirror), for --service osv")
    parser.add_argument("locks", nargs="*", type=Path, default=list(LOCKS))
    args = parser.parse_args(argv)
    results = [audit(lock, args.service, args.osv_url) for lock in args.locks]
    for result in results:
        print(summary(result))
    return 0 if all(not result.error and not result.findings for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
