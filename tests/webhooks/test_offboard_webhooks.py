"""The receiver's offboarding side: ACCOUNTS.DISCONNECTED queues a check and triggers creator_offboard,
ACCOUNTS.CONNECTED re-enables, SESSION.EXPIRED and replays do nothing."""

from __future__ import annotations

import json

from webhook_support import SECRET

from creator_sync.webhooks.signature import sign

URL = "/webhooks/insightiq"


def post(client, name, event_id, user_id="user-1", account_id="acc-1", when="2026-11-10T15:44:18.520054"):
    data = {"account_id": account_id, "user_id": user_id, "last_updated_time": when}
    body = json.dumps({"id": event_id, "event": name, "name": name.lower(), "data": data}).encode()
    headers = {"Content-Type": "application/json", "Webhook-Signatures": sign(body, SECRET)}
    return client.post(URL, content=body, headers=headers)


def test_disconnect_queues_a_check_and_triggers_offboard(client, offboarding, offboard_trigger, store):
    response = post(client, "ACCOUNTS.DISCONNECTED", "e1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ignored" and body["offboarding"] == "queued"
    assert offboard_trigger.runs == [body["run_id"]] and body["run_id"].startswith("insightiq_offboard__")
    (request,) = offboarding.state.requests()
    assert (request["user_id"], request["account_id"], request["source"]) == ("user-1", "acc-1", "webhook")
    assert request["event_time"].year == 2026
    assert store.pending() == []  # a disconnected account is not synced
    assert not offboarding.state.is_offboarded("user-1")  # nothing decided on the webhook's word


def test_replayed_disconnect_does_nothing_more(client, offboarding, offboard_trigger):
    post(client, "ACCOUNTS.DISCONNECTED", "e1")
    assert post(client, "ACCOUNTS.DISCONNECTED", "e1").json()["status"] == "duplicate"
    assert len(offboard_trigger.runs) == 1 and len(offboarding.state.requests()) == 1


def test_failed_trigger_keeps_the_request_queued(client, offboarding, offboard_trigger):
    offboard_trigger.fail = True
    assert post(client, "ACCOUNTS.DISCONNECTED", "e1").json()["offboarding"] == "queued"
    assert len(offboarding.state.requests()) == 1


def test_session_expired_is_not_leaving(client, offboarding, offboard_trigger):
    for name in ("SESSION.EXPIRED", "ACCOUNTS.SESSION_EXPIRED"):
        response = post(client, name, f"e-{name}")
        assert response.status_code == 200 and "offboarding" not in response.json()
    assert offboarding.state.requests() == [] and offboard_trigger.runs == []


def test_connect_drops_a_pending_request_and_re_enables(client, offboarding, store):
    post(client, "ACCOUNTS.DISCONNECTED", "e1")
    offboarding.state.mark_offboarded("user-1", "all_accounts_disconnected", left_at=None)
    assert offboarding.state.is_offboarded("user-1")
    response = post(client, "ACCOUNTS.CONNECTED", "e2", when="2026-11-11T10:00:00Z")
    assert response.json()["offboarding"] == "reenabled"
    assert response.json()["status"] == "queued"  # and the usual targeted sync of the account
    assert not offboarding.state.is_offboarded("user-1")
    assert offboarding.state.requests() == []
    assert store.pending() == ["acc-1"]


def test_connect_older_than_the_disconnect_does_not_re_enable(client, offboarding):
    from creator_sync.offboard.webhook import event_time

    left = event_time("2026-11-10T12:00:00")
    offboarding.state.mark_offboarded("user-1", "all_accounts_disconnected", left)
    late = post(client, "ACCOUNTS.CONNECTED", "e-old", when="2026-11-10T11:00:00")
    assert late.json()["offboarding"] == "nothing to re-enable"
    assert offboarding.state.is_offboarded("user-1")
    newer = post(client, "ACCOUNTS.CONNECTED", "e-new", when="2026-11-10T13:00:00")
    assert newer.json()["offboarding"] == "reenabled"
