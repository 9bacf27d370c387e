"""The upsert path handles the HTTP core's AmbiguousOutcomeError: a batch whose answer was lost after
Insider processed it is sent ONCE; the task attempt fails with the in-flight marker kept; the next attempt
asks Insider (Profile API) and acknowledges the batch instead of sending it again. Real InsiderHook and
VendorClient over httpx.MockTransport, with a small in-memory Insider that stores what it receives."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from creator_sync.hooks.insider import InsiderHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.errors import AmbiguousOutcomeError
from creator_sync.http.limiter import UnlimitedLimiter
from creator_sync.pipeline.send import send_users
from creator_sync.pipeline.state import StateStore

OK_BODY = {"data": {"successful": {"count": 1}, "fail": {}}}


class FakeInsider:
    """Stores every upserted user's events; answers upsert number ``lose`` (1-based) the way ``how`` says,
    AFTER storing it."""

    def __init__(self, lose: int | None = None, how: str = "truncated"):
        self.lose, self.how = lose, how
        self.upserts: list[list[dict]] = []
        self.events: list[tuple[str, str, str]] = []  # (uuid, event_name, timestamp) as stored

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/upsert"):
            self.upserts.append(body["users"])
            for user in body["users"]:
                for ev in user.get("events") or []:
                    self.events.append((user["identifiers"]["uuid"], ev["event_name"], ev["timestamp"]))
            if len(self.upserts) == self.lose:
                if self.how == "truncated":
                    return httpx.Response(200, content=json.dumps(OK_BODY).encode()[:17])
                if self.how == "dropped":
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
                if self.how == "timeout":
                    raise httpx.ReadTimeout("read timed out")
                return httpx.Response(int(self.how), json={"success": False, "message": "gateway"})
            return httpx.Response(200, json=OK_BODY)
        uuid = body["identifiers"]["uuid"]  # Profile API probe
        wanted = body["events"]["wanted"][0]["event_name"]
        mine = [e for e in self.events if e[0] == uuid and e[1] == wanted]
        if not any(e[0] == uuid for e in self.events):
            return httpx.Response(404, json={"error": "no such user for these identifiers: no data"})
        events = {wanted: [{"timestamp": e[2]} for e in mine]} if mine else {}
        return httpx.Response(200, json={"events": events, "quota": {"cost": 1.5}})


def hook(insider: FakeInsider) -> InsiderHook:
    return InsiderHook(
        transport=httpx.MockTransport(insider),
        limiters={"insider_upsert": UnlimitedLimiter(), "insider_profile": UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=5, backoff_initial=0, jitter=0),
    )


def users(n: int) -> list[dict]:
    return [
        {
            "identifiers": {"uuid": f"u{i}"},
            "attributes": {"name": f"N{i}"},
            "events": [
                {"event_name": "content_published", "timestamp": f"2024-05-01T10:0{k}:00Z",
                 "event_params": {"content_id": f"c{i}-{k}"}}
                for k in range(2)
            ],
        }
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("how", ["truncated", "dropped", "timeout", "502", "503", "504"])
def test_a_lost_upsert_answer_is_sent_once_then_confirmed_not_resent(tmp_path, conn_env, how):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    insider = FakeInsider(lose=2, how=how)
    with pytest.raises(AmbiguousOutcomeError) as info:
        send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert info.value.path.endswith("/upsert") and info.value.method == "POST"
    assert len(insider.upserts) == 2  # the lost batch was sent once, never re-sent by the client
    assert len(state.in_flight()) == 1  # the lost-answer check has what it needs

    report = send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert (report.in_flight_confirmed, report.in_flight_resent) == (1, 0)
    assert len(insider.upserts) == 3  # only the batch never sent
    assert len(insider.events) == 12 and max(Counter(insider.events).values()) == 1  # each event once


def test_control_a_client_that_resent_ambiguous_upserts_would_store_events_twice(
    tmp_path, conn_env, monkeypatch
):
    """Guard off: force idempotent=True on every request; the lost batch is re-sent and Insider stores
    its events twice. This is what the one rule for ambiguous outcomes prevents."""
    from creator_sync.http.client import VendorClient

    original = VendorClient.request

    def resend_blindly(self, method, path, **kwargs):
        kwargs["idempotent"] = True
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(VendorClient, "request", resend_blindly)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    insider = FakeInsider(lose=2, how="truncated")
    send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert len(insider.upserts) == 4 and max(Counter(insider.events).values()) == 2
