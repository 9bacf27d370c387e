"""Deliveries signed under the other header name (sandbox reading `other_signature_header`: Phyllo-Signature)
reach the real receiver over HTTP and every one is accepted once; a receiver that read only
Webhook-Signatures answers 401 to each, and InsightIQ deactivates the webhook after 3 failed deliveries."""

from __future__ import annotations

import time

import pytest
from webhook_support import AppServer

from creator_sync.webhooks import signature
from creator_sync.webhooks.app import create_app
from devtools.connections import connection_envs, sandbox_hosts

pytestmark = pytest.mark.slow
EVENTS = 6


@pytest.fixture(scope="module")
def phyllo_sandbox():
    from devtools.sandbox.launcher import SandboxServers

    args = ["--insightiq-rate", "500", "--reading", "other_signature_header"]
    with SandboxServers(creators=20, seed=11, extra_args=args) as sb:
        yield sb


@pytest.fixture
def iq_hook(phyllo_sandbox, monkeypatch):
    from creator_sync.hooks.insightiq import InsightIQHook

    phyllo_sandbox.reset()
    for key, value in connection_envs(sandbox_hosts(phyllo_sandbox)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    hook = InsightIQHook()
    yield hook
    hook.close()


def deliver(iq_hook, receiver, count: int) -> dict:
    server = AppServer(create_app(receiver))
    try:
        iq_hook.create_webhook(f"{server.url}/webhooks/insightiq", ["PROFILES.UPDATED"])
        for i in range(count):
            data = {"account_id": f"acc-{i}", "user_id": "u-1", "profile_id": f"p-{i}"}
            iq_hook.send_mock_webhook({"event": "PROFILES.UPDATED", "name": "profile updated", "data": data})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = iq_hook.client.get("/_sandbox/webhooks/deliveries")["counts"]
            if sum(counts.values()) >= count:
                break
            time.sleep(0.2)
    finally:
        server.close()
    stats = iq_hook.client.get("/_sandbox/stats")
    return {"counts": counts, "deactivated": stats["webhooks_deactivated"]}


def test_every_delivery_under_phyllo_signature_is_accepted_once(iq_hook, receiver, store):
    got = deliver(iq_hook, receiver, EVENTS)
    assert got["counts"] == {"delivered": EVENTS} and got["deactivated"] == 0
    assert store.count_deliveries() == EVENTS
    assert store.pending() == sorted(f"acc-{i}" for i in range(EVENTS))


def test_the_guard_fails_with_one_header_name_the_webhook_is_deactivated(
    iq_hook, receiver, store, monkeypatch
):
    """The guard switched off (only Webhook-Signatures read): every delivery is refused (the receiver has
    the right secret, only the header name differs) and InsightIQ gives up on the webhook."""
    monkeypatch.setattr(signature, "SIGNATURE_HEADERS", ("Webhook-Signatures",))
    got = deliver(iq_hook, receiver, 3)
    assert got["counts"] == {"failed": 3} and got["deactivated"] == 1
    assert store.count_deliveries() == 0
