"""The upsert path handles the HTTP core's AmbiguousOutcomeError: a batch whose answer was lost after
Insider processed it is sent ONCE; the sender asks Insider (Profile API) within the attempt and acknowledges
the batch instead of sending it again; a batch that did not arrive is sent again; a lost answer left in flight
by an attempt that died is settled the same way by the next attempt. Real InsiderHook and
VendorClient over httpx.MockTransport, with a small in-memory Insider that stores what it receives."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from creator_sync.hooks.insider import InsiderHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.limiter import UnlimitedLimiter
from creator_sync.pipeline.send import send_users
from creator_sync.store import StateStore

OK_BODY = {"data": {"successful": {"count": 1}, "fail": {}}}


class Frozen(dict):
    """A stored event's params, hashable so stored events can be counted."""

    def __hash__(self):
        return hash(json.dumps(self, sort_keys=True))


class FakeInsider:
    """Stores every upserted user's events; answers upsert number ``lose`` (1-based) the way ``how`` says,
    AFTER storing it."""

    def __init__(self, lose: int | None = None, how: str = "truncated", store_lost: bool = True):
        self.store_lost = store_lost  # False: the lost request never reached Insider
        self.lose, self.how = lose, how
        self.upserts: list[list[dict]] = []
        self.events: list[tuple] = []  # (uuid, event_name, timestamp, params) as stored

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/upsert"):
            self.upserts.append(body["users"])
            if len(self.upserts) == self.lose and not self.store_lost:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            for user in body["users"]:
                for ev in user.get("events") or []:
                    params = {
                        **ev.get("event_params", {}),
                        **(ev.get("event_params", {}).get("custom") or {}),
                    }
                    self.events.append(
                        (user["identifiers"]["uuid"], ev["event_name"], ev["timestamp"], Frozen(params))
                    )
            if len(self.upserts) == self.lose:
                if self.how == "truncated":
                    return httpx.Response(200, content=json.dumps(OK_BODY).encode()[:17])
                if self.how == "dropped":
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
                if self.how == "timeout":
                    raise httpx.ReadTimeout("read timed out")
                return httpx.Response(int(self.how), json={"success": False, "message": "gateway"})
            return httpx.Response(200, json=OK_BODY)
        uuid = body["identifiers"]["uuid"]  # Profile API probe: the wanted params of each stored event
        if not any(e[0] == uuid for e in self.events):
            return httpx.Response(404, json={"error": "no such user for these identifiers: no data"})
        events = {}
        for wanted in body["events"]["wanted"]:
            rows = [
                {p: e[3][p] for p in wanted["params"] if p in e[3]}
                for e in self.events
                if e[0] == uuid and e[1] == wanted["event_name"]
            ]
            if rows:
                events[wanted["event_name"]] = rows
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


@pytest.fixture(autouse=True)
def no_settle(monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_LOST_ANSWER_SETTLE_S", "0")


@pytest.mark.parametrize("how", ["truncated", "dropped", "timeout", "502", "503", "504"])
def test_a_lost_upsert_answer_is_sent_once_then_confirmed_not_resent(tmp_path, conn_env, how):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    insider = FakeInsider(lose=2, how=how)
    report = send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert (report.lost_answers, report.in_flight_confirmed, report.in_flight_resent) == (1, 2, 0)
    assert len(insider.upserts) == 3  # the lost batch was sent once, never re-sent
    assert report.users_sent == 6 and report.events_sent == 12
    assert state.in_flight() == []
    assert len(insider.events) == 12 and max(Counter(insider.events).values()) == 1  # each event once


def test_a_lost_request_that_never_arrived_is_sent_again_after_the_check(tmp_path, conn_env):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    insider = FakeInsider(lose=2, store_lost=False)
    report = send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert (report.lost_answers, report.in_flight_confirmed, report.in_flight_resent) == (1, 0, 2)
    assert len(insider.upserts) == 4  # the batch that did not arrive went out again, once
    assert len(insider.events) == 12 and max(Counter(insider.events).values()) == 1


def test_an_attempt_that_died_with_a_lost_answer_is_settled_by_the_next(tmp_path, conn_env, monkeypatch):
    """The attempt dies while checking (here: the Profile API check itself fails); the in-flight marker
    stays and the next attempt asks Insider before sending anything."""
    import creator_sync.pipeline.settle as settle

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    insider = FakeInsider(lose=2, how="truncated")

    def dies(*_args, **_kwargs):
        raise RuntimeError("worker killed")

    look = settle._look
    monkeypatch.setattr(settle, "_look", dies)
    with pytest.raises(RuntimeError):
        send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert len(insider.upserts) == 2 and len(state.in_flight()) == 1
    monkeypatch.setattr(settle, "_look", look)
    report = send_users(users(6), state=state, hook=hook(insider), run_id="r", max_users=2)
    assert (report.in_flight_confirmed, report.in_flight_resent) == (2, 0)
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
