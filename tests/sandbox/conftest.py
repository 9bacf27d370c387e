"""Sandbox test fixtures: one sandbox process per session (fast limits), helpers for HTTP and a tiny
local HTTP receiver for webhooks/error callbacks."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sandbox_samples import INSIDER_HEADERS, IQ_AUTH, NOW, PUSH_HEADERS

from devtools.sandbox.launcher import SandboxServers


@pytest.fixture(scope="session")
def sandbox():
    sb = SandboxServers(
        creators=300,
        seed=7,
        extra_args=[
            "--insightiq-rate",
            "100000",
            "--insightiq-concurrency",
            "1000",
            "--web-push-rate",
            "1000",
            "--now",
            NOW,
        ],
    )
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def iq(sandbox):
    with httpx.Client(base_url=sandbox.insightiq_url, auth=IQ_AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def hook(iq):
    """The package's InsightIQ hook against the sandbox (its `iq` fixture, a module's own where it has one),
    without a limiter: the sandbox's limits are high."""
    from creator_sync.hooks.insightiq import InsightIQHook
    from creator_sync.http.limiter import UnlimitedLimiter

    hook = InsightIQHook(limiters={"insightiq_api": UnlimitedLimiter()})
    yield hook
    hook.close()


@pytest.fixture
def insider(sandbox):
    with httpx.Client(base_url=sandbox.insider_url, headers=INSIDER_HEADERS, timeout=30) as client:
        yield client


@pytest.fixture
def push(sandbox):
    with httpx.Client(base_url=sandbox.web_push_url, headers=PUSH_HEADERS, timeout=30) as client:
        yield client


class Receiver:
    """A local HTTP server recording every POST (headers, raw body)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)

    def json(self, i: int) -> dict:
        return json.loads(self.requests[i]["body"])

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def history_sandbox(sandbox):
    """Hidden window: everything older than 100 days before the data set's NOW (the connection is now)."""
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()
    days = (time.time() - now) / 86_400 + 100
    sandbox.configure("insightiq", {"history_default_days": days, "historic_job_seconds": 1.0})
    yield sandbox
    sandbox.reset("insightiq")
    sandbox.configure("insightiq", {"history_default_days": 30, "historic_job_seconds": 5})
