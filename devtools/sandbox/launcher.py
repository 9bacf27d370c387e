"""Run the sandboxes as a subprocess for tests/benchmarks.

with SandboxServers(creators=200, seed=7, extra_args=["--insightiq-rate", "50"]) as sb:
    sb.insightiq_url, sb.insider_url, sb.web_push_url, sb.pid
    sb.stats("insightiq"); sb.reset(); sb.configure("insider", {"drop_attributes": ["name"]})
    sb.insider_users(); sb.insider_lookup(["<uuid>", ...])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("insightiq", "insider", "web_push")


class SandboxServers:
    def __init__(
        self,
        creators: int = 1000,
        seed: int = 42,
        extra_args: list[str] | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 120.0,
    ) -> None:
        self.args = [
            "--host",
            host,
            "--insightiq-port",
            "0",
            "--insider-port",
            "0",
            "--web-push-port",
            "0",
            "--creators",
            str(creators),
            "--seed",
            str(seed),
            *(extra_args or []),
        ]
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> SandboxServers:
        self._log = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.sandbox", *self.args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        ready: dict = {}
        self._ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        self._ready.wait(self.startup_timeout)
        if not ready:
            self.stop()
            raise RuntimeError(f"sandbox did not start; log tail:\n{self.log_tail()}")
        self.urls = ready
        return self

    def _read(self, ready: dict) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            if line.startswith("{"):
                ready.update(json.loads(line))
                break
        self._ready.set()
        for _ in self.proc.stdout:  # keep draining so the child never blocks on a full pipe
            pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self._log.name).read_text()[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> SandboxServers:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- accessors ----------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def insightiq_url(self) -> str:
        return self.urls["insightiq"]

    @property
    def insider_url(self) -> str:
        return self.urls["insider"]

    @property
    def web_push_url(self) -> str:
        return self.urls["web_push"]

    def url(self, service: str) -> str:
        return self.urls[service]

    def stats(self, service: str) -> dict:
        return httpx.get(f"{self.urls[service]}/_sandbox/stats", timeout=30).raise_for_status().json()

    def reset(self, *services: str) -> None:
        for service in services or SERVICES:
            httpx.post(f"{self.urls[service]}/_sandbox/reset", timeout=30).raise_for_status()

    def configure(self, service: str, values: dict) -> dict:
        return (
            httpx.post(f"{self.urls[service]}/_sandbox/config", json=values, timeout=30)
            .raise_for_status()
            .json()
        )

    def insider_users(self, page: int = 500) -> list[dict]:
        """Every user stored at the Insider sandbox (inspection API, paged)."""
        return insider_users(self.insider_url, page)

    def insider_lookup(self, uuids: list[str]) -> dict[str, dict | None]:
        """{uuid: the stored Insider user, or None when no user has that uuid}."""
        return insider_lookup(self.insider_url, uuids)


def insider_users(insider_url: str, page: int = 500) -> list[dict]:
    """Every user stored at the Insider sandbox at `insider_url` (inspection API, paged)."""
    users: list[dict] = []
    while True:
        params = {"offset": len(users), "limit": page}
        data = httpx.get(f"{insider_url}/_sandbox/users", params=params, timeout=60).json()["data"]
        users += data
        if len(data) < page:
            return users


def insider_lookup(insider_url: str, uuids: list[str]) -> dict[str, dict | None]:
    """{uuid: the user stored at the Insider sandbox at `insider_url`, or None when no user has that uuid}."""
    response = httpx.post(f"{insider_url}/_sandbox/users/lookup", json={"uuids": uuids}, timeout=60)
    return response.raise_for_status().json()["data"]
