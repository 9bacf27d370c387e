"""The receiver and the webhook setup against the real InsightIQ / Insider sandboxes (signed deliveries,
webhook registry, unification-error callbacks)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from webhook_support import SECRET, AppServer, Capture, FakeTrigger

from creator_sync.routes.callback import error_callback_endpoint
from creator_sync.webhooks.app import Receiver, create_app
from creator_sync.webhooks.registration import ensure_webhook
from devtools.connections import connection_envs, sandbox_hosts
from devtools.insider_load import upsert_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox():
    from devtools.sandbox.launcher import SandboxServers

    # a higher InsightIQ rate so the 100-event burst test sends quickly (the hook's own limiter is bypassed)
    with SandboxServers(creators=50, seed=11, extra_args=["--insightiq-rate", "500"]) as sb:
        yield sb


@pytest.fixture
def sb(sandbox, monkeypatch):
    sandbox.reset()
    for key, value in connection_envs(sandbox_hosts(sandbox)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    return sandbox


@pytest.fixture
def iq_hook(sb):
    from creator_sync.hooks.insightiq import InsightIQHook

    hook = InsightIQHook()
    yield hook
    hook.close()


def payload(account_id="acc-1", event="PROFILES.UPDATED", **extra):
    data = {
        "account_id": account_id,
        "user_id": "u-1",
        "profile_id": "p-1",
        "last_updated_time": "2025-01-01",
    }
    return {"event": event, "name": event.lower(), "data": data, **extra}


def test_sandbox_signed_delivery_is_accepted_and_forgeries_are_not(iq_hook, receiver, store, trigger):
    capture = Capture()
    try:
        iq_hook.create_webhook(capture.url, ["PROFILES.UPDATED"])
        iq_hook.send_mock_webhook(payload())
        [(headers, body)] = capture.wait(1)
    finally:
        capture.close()
    signature = {k.lower(): v for k, v in headers.items()}["webhook-signatures"]
    with TestClient(create_app(receiver)) as client:
        post = lambda b, s: client.post(  # noqa: E731
            "/webhooks/insightiq",
            content=b,
            headers={"Webhook-Signatures": s, "Content-Type": "application/json"},
        )
        tampered = body.replace(b"acc-1", b"acc-2")
        assert post(tampered, signature).status_code == 401
        assert store.count_deliveries() == 0
        accepted = post(body, signature)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "queued"
        assert post(body, signature).json()["status"] == "duplicate"
    assert store.count_deliveries() == 1
    run_id = receiver.coalescer.flush(force=True)
    assert trigger.runs == {run_id: ["acc-1"]}


def test_sandbox_delivers_a_burst_straight_to_the_app_and_it_coalesces(iq_hook, store, trigger, dead_letters):
    receiver = Receiver(
        store=store,
        trigger=trigger,
        insightiq_secret=lambda: SECRET,
        insider_token=lambda: "unused",
        dead_letter_sink=dead_letters,
        debounce_s=1.0,
        background=True,
    )
    server = AppServer(create_app(receiver))
    try:
        iq_hook.create_webhook(f"{server.url}/webhooks/insightiq", ["PROFILES.UPDATED", "CONTENTS.ADDED"])
        auth = ("sandbox-client-id", SECRET)
        with httpx.Client(base_url=str(iq_hook.client.base_url), auth=auth, timeout=10) as raw:
            for i in range(100):
                body = {"payload": payload(event="CONTENTS.ADDED" if i % 2 else "PROFILES.UPDATED")}
                raw.post("/v1/webhooks/send", json=body).raise_for_status()
        deadline = time.monotonic() + 30
        while store.count_deliveries() < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        while not trigger.runs and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a second trigger, if any, would come within one more debounce window
    finally:
        receiver.coalescer.stop()
        server.close()
    assert store.count_deliveries() == 100
    assert list(trigger.runs.values()) == [["acc-1"]]
    stats = httpx.get(f"{iq_hook.client.base_url}/_sandbox/webhooks/deliveries").json()
    assert stats["counts"].get("delivered") == 100


def test_webhook_setup_creates_then_does_nothing_then_updates(iq_hook):
    url = "https://airflow.example.com/creator-sync/webhooks/insightiq"
    first = ensure_webhook(iq_hook, url, ["PROFILES.UPDATED", "ACCOUNTS.CONNECTED"])
    assert first["action"] == "created"
    again = ensure_webhook(iq_hook, url, ["ACCOUNTS.CONNECTED", "PROFILES.UPDATED"])
    assert again["action"] == "unchanged"
    assert again["id"] == first["id"]
    more = ensure_webhook(iq_hook, url, ["ACCOUNTS.CONNECTED", "PROFILES.UPDATED", "CONTENTS.ADDED"])
    assert more["action"] == "updated"
    assert more["changed"]["events_added"] == ["CONTENTS.ADDED"]
    moved = ensure_webhook(iq_hook, "https://new.example.com/creator-sync/webhooks/insightiq", more["events"])
    assert moved["action"] == "updated" and moved["id"] == first["id"]
    hooks = list(iq_hook.iter_records("webhooks"))
    assert len(hooks) == 1
    assert hooks[0]["url"].startswith("https://new.example.com")
    assert sorted(hooks[0]["events"]) == more["events"]
    assert ensure_webhook(iq_hook, hooks[0]["url"], more["events"])["action"] == "unchanged"


def test_every_subscribed_event_is_a_name_insightiq_knows(iq_hook):
    """The default subscription registers; a misspelt family (the vendor writes CONTENT-GROUPS with a hyphen)
    is refused by the API's enum, which is how a wrong name in SUBSCRIBED_EVENTS shows up."""
    from creator_sync.http.errors import VendorError
    from creator_sync.webhooks.events import SUBSCRIBED_EVENTS

    url = "https://airflow.example.com/creator-sync/webhooks/insightiq"
    created = ensure_webhook(iq_hook, url)
    assert created["action"] == "created" and created["events"] == sorted(SUBSCRIBED_EVENTS)
    assert "CONTENT-GROUPS.ADDED" in SUBSCRIBED_EVENTS
    with pytest.raises(VendorError, match=r"CONTENT_GROUPS\.ADDED"):
        iq_hook.create_webhook(url + "/other", ["CONTENT_GROUPS.ADDED"], name="misspelt")


def test_insider_unification_error_callback_lands_in_dead_letters(sb, tmp_path, monkeypatch):
    from creator_sync.hooks.insider import InsiderHook
    from creator_sync.store import StateStore
    from creator_sync.webhooks.dead_letters import record_unification_errors

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.record_outcomes("scheduled__sandbox", [("cs-a", "sent", 0)])  # the callback names a user we sent
    token = "1a2b3c4e5d6f"
    receiver = Receiver(
        store=None,
        trigger=FakeTrigger(),
        insightiq_secret=lambda: SECRET,
        insider_token=lambda: token,
        dead_letter_sink=lambda users, reason, raw: record_unification_errors(
            users, reason=reason, store=state
        ),
        background=False,
    )
    server = AppServer(create_app(receiver))
    hook = InsiderHook()
    try:
        monkeypatch.setenv("CREATOR_SYNC_PUBLIC_BASE_URL", server.url)
        endpoint = error_callback_endpoint(token)
        assert endpoint.startswith(f"{server.url}/creator-sync/webhooks/insider-errors?token=")
        # The app is served at the root here (the API server mounts it under /creator-sync).
        endpoint = endpoint.replace("/creator-sync/", "/")
        a = {"identifiers": {"uuid": "cs-a", "email": "a@example.com"}, "attributes": {"name": "A"}}
        b = {"identifiers": {"uuid": "cs-b", "email": "b@example.com"}, "attributes": {"name": "B"}}
        upsert_all(hook, [a, b])
        clash = {"identifiers": {"uuid": "cs-a", "email": "b@example.com"}, "attributes": {"name": "AB"}}
        report, _ = upsert_all(hook, [clash], error_callback_endpoint=endpoint)
        assert report.rejected == {"vendor_rejected": 1}
        deadline = time.monotonic() + 15
        while not state.dead_letters() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        hook.close()
        server.close()
    [letter] = state.dead_letters()
    assert letter.reason == "unification_error"
    assert letter.user_key == "cs-a"
    assert letter.payload == clash
    assert sb.stats("insider")["error_callbacks"] == {"delivered": 1}


def test_error_callback_with_a_wrong_token_is_refused(client, dead_letters):
    body = json.dumps({"users": [{"identifiers": {"uuid": "x"}}]}).encode()
    assert client.post("/webhooks/insider-errors?token=nope", content=body).status_code == 401
    assert client.post("/webhooks/insider-errors", content=body).status_code == 401
    assert dead_letters.rows == []
