"""Issue 24, the callback and webhook endpoints through a real port on 127.0.0.1 (uvicorn): the token is
checked before the body is read, users and bytes are capped, only users the project sent recently are
stored (in one transaction), hostile JSON nesting is a 400, and a missing connection is not looked up on
every anonymous request. Each guard is also switched off once to show the attack it stops."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import timedelta

import httpx
import pytest
from webhook_support import SECRET, AppServer, FakeTrigger

from creator_sync.routes.callback import callback_token
from creator_sync.store import StateStore
from creator_sync.store.engine import now
from creator_sync.webhooks import app as webhook_app
from creator_sync.webhooks import bounded_json
from creator_sync.webhooks import dead_letters as dl
from creator_sync.webhooks.app import Receiver, create_app
from creator_sync.webhooks.dead_letters import record_unification_errors
from creator_sync.webhooks.signature import sign

INSIDER_REQUEST_TOKEN = "1a2b3c4e5d6f"  # the insider_default connection password
TOKEN = callback_token(INSIDER_REQUEST_TOKEN)  # what the error_callback_endpoint URL carries
URL = "/webhooks/insider-errors"


def user(uuid: str) -> dict:
    return {"identifiers": {"uuid": uuid, "email": f"{uuid}@example.com"}, "attributes": {"name": uuid}}


@pytest.fixture(autouse=True)
def _no_explicit_token(monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_INSIDER_CALLBACK_TOKEN", raising=False)


@pytest.fixture
def state(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.record_outcomes("scheduled__recent", [("sent-1", "sent", 1), ("sent-2", "sent", 0)])
    return state


@pytest.fixture
def writes(state, monkeypatch):
    """How many write transactions the state store opened."""
    opened = []
    original = state.write

    def counting():
        opened.append(1)
        return original()

    monkeypatch.setattr(state, "write", counting)
    return opened


@pytest.fixture
def server(state, tmp_path):
    receiver = Receiver(
        store=None,
        trigger=FakeTrigger(),
        insightiq_secret=lambda: SECRET,
        insider_token=lambda: INSIDER_REQUEST_TOKEN,
        dead_letter_sink=lambda users, reason, raw: record_unification_errors(
            users, reason=reason, store=state
        ),
        background=False,
    )
    from creator_sync.store.webhooks import WebhookStore, make_engine

    receiver._store = WebhookStore(make_engine(f"sqlite:///{tmp_path / 'hooks.db'}"))
    srv = AppServer(create_app(receiver))
    yield srv
    srv.close()


def post(server, body: bytes, token: str | None = TOKEN, path: str = URL, headers: dict | None = None):
    params = {"token": token} if token else {}
    return httpx.post(f"{server.url}{path}", params=params, content=body, headers=headers, timeout=30)


def stored(state) -> set[str]:
    return {d.user_key for d in state.dead_letters()}


# -- only users the project sent ------------------------------------------------------------------------


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_callback_stores_only_users_the_project_sent_recently(server, state, monkeypatch, guard):
    state.record_outcomes("scheduled__old", [("sent-long-ago", "sent", 1)])
    from creator_sync.store.schema import run_users

    with state.engine.begin() as conn:  # sent five days ago: past CREATOR_SYNC_CALLBACK_SENT_WITHIN_HOURS
        conn.execute(
            run_users.update()
            .where(run_users.c.user_key == "sent-long-ago")
            .values(updated_at=now() - timedelta(days=5))
        )
    state.record_outcomes("scheduled__recent", [("rejected-1", "vendor_rejected", 0)])
    if guard == "off":
        monkeypatch.setattr(dl, "sent_recently", lambda conn, keys, now=None: set(keys))
    planted = [user("sent-1"), user("sent-long-ago"), user("rejected-1"), user("attacker-1"), {"x": 1}]
    answer = post(server, json.dumps({"users": planted}).encode())
    assert answer.status_code == 200
    if guard == "off":  # the attack: anyone holding the token plants replayable dead letters
        assert {"attacker-1", "sent-long-ago", "rejected-1"} <= stored(state)
        return
    assert answer.json() == {"status": "dead_lettered", "users": 1, "ignored": 4}
    assert stored(state) == {"sent-1"}


def test_the_window_is_a_setting(state, monkeypatch):
    from creator_sync.errors import CreatorSyncConfigError
    from creator_sync.webhooks import sent_index

    monkeypatch.setenv(sent_index.SENT_WITHIN_ENV, "1")
    assert sent_index.sent_within() == timedelta(hours=1)
    with state.engine.connect() as conn:
        assert sent_index.sent_recently(conn, ["sent-1"], now=now() + timedelta(hours=2)) == set()
        assert sent_index.sent_recently(conn, ["sent-1", "nobody"]) == {"sent-1"}
    monkeypatch.setenv(sent_index.SENT_WITHIN_ENV, "soon")
    with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_CALLBACK_SENT_WITHIN_HOURS"):
        sent_index.sent_within()


def test_one_callback_is_one_transaction(state, writes):
    keys = [f"u{i}" for i in range(600)]
    state.record_outcomes("scheduled__big", [(k, "sent", 0) for k in keys])
    writes.clear()
    assert record_unification_errors([user(k) for k in keys], reason="unification_error", store=state) == 600
    assert len(writes) == 1 and len(stored(state)) == 600


# -- caps and the order of checks -----------------------------------------------------------------------


@pytest.mark.parametrize("guard", ["on", "off"])
def test_users_per_callback_are_capped(server, state, monkeypatch, guard):
    keys = [f"bulk-{i}" for i in range(webhook_app.MAX_CALLBACK_USERS + 1)]
    state.record_outcomes("scheduled__bulk", [(k, "sent", 0) for k in keys])
    if guard == "off":
        monkeypatch.setattr(webhook_app, "MAX_CALLBACK_USERS", 10**9)
    answer = post(server, json.dumps({"users": [user(k) for k in keys]}).encode())
    if guard == "off":
        assert answer.status_code == 200 and len(stored(state)) == len(keys)
        return
    assert answer.status_code == 413 and "1000 users" in answer.text
    assert stored(state) == set()


def test_an_oversized_body_is_413(server, state):
    body = json.dumps({"users": [user("sent-1")], "pad": "x" * webhook_app.MAX_CALLBACK_BYTES}).encode()
    assert post(server, body).status_code == 413
    assert stored(state) == set()


def _raw_post(server, query: str, length: int, sent: bytes) -> bytes:
    """A request announcing `length` body bytes that sends only `sent`; the answer, or b'' on timeout."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST {URL}{query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
            + sent
        )
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""


@pytest.mark.parametrize("query", ["", "?token=wrong"])
def test_the_token_is_checked_before_the_body_is_read(server, query):
    started = time.monotonic()
    answer = _raw_post(server, query, webhook_app.MAX_CALLBACK_BYTES, b'{"users": [')
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]  # without waiting for the 5 MB announced
    assert time.monotonic() - started < 4


def test_a_valid_token_waits_for_the_body(server):
    """The check above is meaningful: a request the token admits does wait for its body."""
    assert _raw_post(server, f"?token={TOKEN}", 1000, b'{"users": [') == b""


# -- hostile JSON -----------------------------------------------------------------------------------------

DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize("guard", ["on", "off"])
def test_deeply_nested_json_to_the_callback_is_400(server, state, monkeypatch, guard):
    if guard == "off":
        monkeypatch.setattr(bounded_json, "loads", json.loads)
    answer = post(server, DEEP)
    assert answer.status_code == (400 if guard == "on" else 500)
    if guard == "on":
        assert "nested deeper than 32 levels" in answer.text


def test_deeply_nested_json_to_the_webhook_is_400(server):
    body = b'{"id": "e1", "event": "PROFILES.UPDATED", "data": {"account_id": "a1", "x": ' + DEEP + b"}}"
    answer = post(
        server,
        body,
        token=None,
        path="/webhooks/insightiq",
        headers={"Webhook-Signatures": sign(body, SECRET)},
    )
    assert answer.status_code == 400 and "nested deeper" in answer.text


def test_depth_ignores_brackets_inside_strings():
    assert bounded_json.depth(b'{"a": "[[[[[[", "b": ["\\"[[["]}') == 2
    assert bounded_json.loads('{"users": [{"identifiers": {"uuid": "x"}}]}') == {
        "users": [{"identifiers": {"uuid": "x"}}]
    }
    with pytest.raises(bounded_json.TooDeep):
        bounded_json.loads(b"[" * 33 + b"]" * 33)


# -- a missing connection ---------------------------------------------------------------------------------


def test_a_missing_connection_is_not_looked_up_per_anonymous_request(tmp_path, monkeypatch, caplog):
    lookups = []

    def missing(conn_id):
        lookups.append(conn_id)
        logging.getLogger(webhook_app.__name__).warning("Cannot read connection %s: %s", conn_id, "NotFound")
        return None

    monkeypatch.setattr(webhook_app, "connection_password", missing)
    monkeypatch.delenv("CREATOR_SYNC_INSIDER_CALLBACK_TOKEN", raising=False)
    srv = AppServer(create_app(Receiver(trigger=FakeTrigger(), background=False)))
    try:
        body = json.dumps({"users": [user("sent-1")]}).encode()
        with caplog.at_level(logging.WARNING):
            assert {post(srv, body, token=None).status_code for _ in range(20)} == {401}
            assert lookups == []  # no token: refused before any lookup
            assert {post(srv, body, token="guess").status_code for _ in range(20)} == {401}
        assert lookups == ["insider_default"]  # once per minute, not once per request
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        srv.close()


def test_connection_password_logs_no_traceback(monkeypatch, caplog):
    from airflow.models.connection import Connection

    def boom(conn_id):
        raise RuntimeError("no such connection")

    monkeypatch.setattr(Connection, "get_connection_from_secrets", staticmethod(boom))
    with caplog.at_level(logging.WARNING):
        assert webhook_app.connection_password("insider_default") is None
    assert [r.exc_info for r in caplog.records] == [None]
