"""An incremental hourly run against the InsightIQ sandbox: the sandbox changes creators and sends its
signed webhooks, the planner turns them into reads, the hook executes them; the requests grow by one per
extra changed creator and stay far below a full run."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync import incremental, plan

from .factories import SANDBOX_NOW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget")]

EVENTS = ["PROFILES.UPDATED", "CONTENTS.ADDED", "TRANSACTIONS.ADDED"]
RATE = 200  # requests/s on both sides, so the full run for comparison takes seconds


@pytest.fixture(scope="module")
def sandbox():
    """700 creators: enough pages of profiles that six changed creators stay below reading the whole list
    (at 500, four more changed creators cost three more requests, not four). The data set ends at
    SANDBOX_NOW (in the past): today's contents are only the ones the test adds."""
    from devtools.sandbox.launcher import SandboxServers

    args = ["--insightiq-rate", str(RATE), "--now", SANDBOX_NOW]
    with SandboxServers(creators=700, seed=7, extra_args=args) as sb:
        yield sb


@pytest.fixture(autouse=True)
def raised_rate(monkeypatch, tmp_path):
    from devtools.bench.e2e import raised_config_dir

    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(tmp_path / "config", RATE)))


class Inbox:
    def __init__(self) -> None:
        self.payloads: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.payloads.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.payloads) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.payloads) >= count, f"{len(self.payloads)} of {count} webhooks arrived"
        taken, self.payloads = self.payloads[:count], self.payloads[count:]
        return taken


@pytest.fixture
def inbox(sandbox_env):
    box = Inbox()
    InsightIQHook().client.post("/v1/webhooks", {"url": box.url, "events": EVENTS})
    yield box
    box.server.shutdown()


def test_hourly_incremental_requests_grow_with_the_change(sandbox_env, inbox):
    directory = InsightIQHook()
    users, accounts = list(directory.iter_records("users")), list(directory.iter_records("accounts"))
    snapshot = incremental.snapshot_from(users, accounts)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=1)  # the current hour: the new contents are dated in it

    def hourly(user_ids: list[str]) -> tuple[int, dict, plan.Changes]:
        changed = httpx.post(
            f"{sandbox_env.insightiq_url}/_sandbox/mutate",
            json={"user_ids": user_ids, "kinds": ["profiles", "contents", "transactions"]},
            timeout=60,
        ).json()
        payloads = inbox.take(sum(changed["events"].values()))
        changes = plan.changes_from_payloads(payloads, snapshot.known_users)
        reads = plan.plan_hourly(snapshot, changes, start, end, hour=1)
        hook = InsightIQHook()
        got = incremental.execute(hook, reads)
        return hook.stats["requests"], got, changes

    few_users, more_users = [u["id"] for u in users[:2]], [u["id"] for u in users[10:16]]
    few, _, _ = hourly(few_users)
    more, got_more, changes = hourly(more_users)

    # four more changed creators: four more requests (one profile read each); the searches, the interval's
    # contents list and the sweep slices cost the same
    assert more - few == 4
    # the webhook items were fetched by id, the changed profiles are the new ones
    assert {t["id"] for t in got_more["social_transactions"]} >= changes.transactions
    assert {c["id"] for c in got_more["contents"]} >= changes.contents
    fresh = {
        p["user"]["id"] for p in got_more["profiles"] if p["id"] in set().union(*changes.profiles.values())
    }
    assert fresh == set(more_users)

    full_hook = InsightIQHook()
    incremental.execute(full_hook, plan.plan_full(snapshot, start, end))
    assert more * 5 < full_hook.stats["requests"]
