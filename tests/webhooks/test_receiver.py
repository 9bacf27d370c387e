"""The InsightIQ webhook receiver, driven through FastAPI's TestClient with a substituted trigger."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from webhook_support import SECRET

from creator_sync.store.engine import now as utcnow
from creator_sync.webhooks.signature import sign

URL = "/webhooks/insightiq"


def event(event_id="evt-1", account_id="acc-1", name="PROFILES.UPDATED") -> bytes:
    data = {"account_id": account_id, "user_id": "user-1", "profile_id": "prof-1"}
    body = {"id": event_id, "event": name, "name": name.lower(), "data": data}
    return json.dumps(body).encode()


def post(client, body: bytes, sig: str | None = "auto"):
    headers = {"Content-Type": "application/json"}
    if sig == "auto":
        sig = sign(body, SECRET)
    if sig is not None:
        headers["Webhook-Signatures"] = sig
    return client.post(URL, content=body, headers=headers)


def test_valid_signature_is_accepted_and_queues_the_account(client, store, receiver, trigger):
    response = post(client, event())
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "queued", "id": "evt-1", "account_id": "acc-1"}
    assert store.delivery("evt-1")["action"] == "queued"
    assert store.pending() == ["acc-1"]
    run_id = receiver.coalescer.flush(force=True)
    assert trigger.runs == {run_id: ["acc-1"]}
    assert store.pending() == []


def test_any_of_several_signatures_may_match(client, store):
    body = event()
    header = f"{sign(body, 'old-rotated-secret')}, {sign(body, SECRET).upper()}"
    assert post(client, body, header).status_code == 200


def _nothing_written(store, trigger, receiver):
    assert store.count_deliveries() == 0
    assert store.pending() == []
    assert receiver.coalescer.flush(force=True) is None
    assert trigger.runs == {}


def test_forged_signature_is_401_and_writes_nothing(client, store, trigger, receiver):
    body = event()
    assert post(client, body, sign(body, "not-the-secret")).status_code == 401
    assert post(client, body, sign(body + b" ", SECRET)).status_code == 401
    assert post(client, body, "zz-not-hex").status_code == 401
    _nothing_written(store, trigger, receiver)


def test_unsigned_is_401(client, store, trigger, receiver):
    assert post(client, event(), None).status_code == 401
    assert post(client, event(), " , ").status_code == 401
    _nothing_written(store, trigger, receiver)


def test_oversized_body_is_413(client, store, trigger, receiver):
    body = json.dumps({"id": "big", "event": "PROFILES.ADDED", "data": {"pad": "x" * 1_100_000}}).encode()
    assert post(client, body).status_code == 413
    _nothing_written(store, trigger, receiver)


def test_malformed_signed_bodies_are_400(client, store, trigger, receiver):
    for body in (
        b"not json",
        b"[1, 2]",
        b'{"id": "e", "data": {"account_id": "a"}}',
        b'{"id": "e", "event": "PROFILES.ADDED", "data": "x"}',
        b'{"id": 5, "event": "PROFILES.ADDED", "data": {"account_id": "a"}}',
        b'{"id": "e", "event": "PROFILES.ADDED", "data": {"account_id": 7}}',
    ):
        assert post(client, body).status_code == 400, body
    _nothing_written(store, trigger, receiver)


def test_replayed_delivery_is_acknowledged_and_does_nothing(client, store, receiver, trigger):
    body = event()
    assert post(client, body).json()["status"] == "queued"
    receiver.coalescer.flush(force=True)
    assert len(trigger.runs) == 1
    replay = post(client, body)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert store.count_deliveries() == 1
    assert store.pending() == []
    assert receiver.coalescer.flush(force=True) is None
    assert len(trigger.runs) == 1


def test_connection_state_events_are_recorded_without_a_sync(client, store):
    response = post(client, event(name="ACCOUNTS.DISCONNECTED"))
    assert response.json()["status"] == "ignored"
    assert store.pending() == []
    no_account = json.dumps({"id": "e2", "event": "USERS.ADDED", "data": {"user_id": "u"}}).encode()
    assert post(client, no_account).json()["status"] == "ignored"


def test_burst_of_100_events_for_one_account_gives_one_trigger(client, store, receiver, trigger):
    for i in range(100):
        assert post(client, event(f"evt-{i}")).status_code == 200
    assert store.count_deliveries() == 100
    assert store.pending() == ["acc-1"]
    assert receiver.coalescer.flush() is None, "not due before the debounce window ends"
    run_id = receiver.coalescer.flush(now=utcnow() + timedelta(seconds=31))
    assert trigger.runs == {run_id: ["acc-1"]}
    assert receiver.coalescer.flush(now=utcnow() + timedelta(seconds=62)) is None


def test_accounts_arriving_while_the_run_is_queued_join_it(client, receiver, trigger, store):
    post(client, event("e1", "acc-1"))
    first = receiver.coalescer.flush(force=True)
    post(client, event("e2", "acc-2"))
    assert receiver.coalescer.flush(force=True) == first
    assert trigger.runs == {first: ["acc-1", "acc-2"]}
    trigger.started.add(first)  # the scheduler started it: the next batch needs its own run
    post(client, event("e3", "acc-3"))
    second = receiver.coalescer.flush(force=True)
    assert second != first
    assert trigger.runs[second] == ["acc-3"]


def test_failed_trigger_keeps_the_accounts_and_retries_with_the_same_run_id(client, receiver, trigger, store):
    post(client, event("e1", "acc-1"))
    trigger.fail = True
    assert receiver.coalescer.flush(force=True) is None
    assert store.has_unsent()
    post(client, event("e2", "acc-2"))
    trigger.fail = False
    run_id = receiver.coalescer.flush(force=True)
    assert trigger.runs == {run_id: ["acc-1", "acc-2"]}
    assert not store.has_unsent()


def test_background_flusher_triggers_once_after_the_debounce(store, trigger, dead_letters):
    from fastapi.testclient import TestClient

    from creator_sync.webhooks.app import Receiver, create_app

    receiver = Receiver(
        store=store,
        trigger=trigger,
        insightiq_secret=lambda: SECRET,
        insider_token=lambda: "x",
        dead_letter_sink=dead_letters,
        debounce_s=0.5,
        background=True,
    )
    with TestClient(create_app(receiver)) as client:
        for i in range(20):
            post(client, event(f"e{i}", f"acc-{i % 2}"))
        deadline = time.monotonic() + 10
        while not trigger.runs and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    receiver.coalescer.stop()
    assert list(trigger.runs.values()) == [["acc-0", "acc-1"]]


def test_missing_secret_is_503_and_writes_nothing(store, trigger, dead_letters):
    from fastapi.testclient import TestClient

    from creator_sync.webhooks.app import Receiver, create_app

    receiver = Receiver(store=store, trigger=trigger, insightiq_secret=lambda: None, background=False)
    with TestClient(create_app(receiver)) as client:
        assert post(client, event()).status_code == 503
    assert store.count_deliveries() == 0
