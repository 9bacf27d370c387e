"""The webhook receiver: a FastAPI app the Airflow API server mounts at ``/creator-sync``
(``include/creator_sync_webhooks_plugin.py``).

* ``POST /webhooks/insightiq``  InsightIQ events -> a coalesced, targeted ``creator_sync`` run.
  413 when the body exceeds 1 MB, 401 when no entry of a signature header (``Webhook-Signatures`` or
  ``Phyllo-Signature``, webhooks/signature.py) is the HMAC of the raw body,
  400 when the signed body is not a webhook payload - in all three cases nothing is written. 200 for an
  accepted event, and 200 (``duplicate``) for a replay, which does nothing.
* ``POST /webhooks/insider-errors?token=...``  Insider One's unification-error callback -> each user of the
  payload that the project sent recently (creator_sync.webhooks.sent_index) into the dead-letter store with
  reason ``unification_error``, all in one transaction. The token is checked before the body is read (401);
  413 over MAX_CALLBACK_BYTES or MAX_CALLBACK_USERS users; 400 for a body that is not an Upsert payload or
  is nested deeper than bounded_json.MAX_DEPTH.
* ``GET /health``  liveness, no state touched.

No Airflow authentication applies here (plugin apps are mounted outside ``/api``): the HMAC signature and
the callback token are the authentication. A missing connection is looked up at most once a minute
(``_Cached``) and logged without a traceback; a request without a token is refused before any lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from creator_sync import settings
from creator_sync.routes import callback
from creator_sync.webhooks import bounded_json, signature
from creator_sync.webhooks.events import MalformedEvent, parse_event

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024  # InsightIQ events are a few hundred bytes
MAX_CALLBACK_BYTES = 5_000_000 + 64 * 1024  # Insider re-sends one Upsert payload (at most 5,000,000 bytes)
MAX_CALLBACK_USERS = 1_000  # and an Upsert request holds at most 1,000 users
DEBOUNCE_ENV = "CREATOR_SYNC_WEBHOOK_DEBOUNCE_S"
DEFAULT_DEBOUNCE_S = settings.default("webhook_debounce_s")  # docs/performance.md: runs per hour vs latency
INSIGHTIQ_CONN_ID = "insightiq_default"
INSIDER_CONN_ID = "insider_default"
UNIFICATION_ERROR = "unification_error"


def connection_password(conn_id: str) -> str | None:
    """The password of an Airflow connection, read the API server's way (secrets backends, then the DB)."""
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id).password
    except Exception as exc:  # missing connection: reported by the caller (503 / 401), no traceback
        log.warning("Cannot read connection %s: %s", conn_id, type(exc).__name__)
        return None


class _Cached:
    """A value re-read at most every ``ttl`` seconds (so a rotated secret is picked up). A missing value
    (None) is remembered for ``ttl`` too: requests do not each look up an absent connection."""

    def __init__(self, load: Callable[[], str | None], ttl: float = 60.0):
        self.load, self.ttl = load, ttl
        self._value: str | None = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._value, self._at = self.load(), time.monotonic()
            return self._value


def default_dead_letter_sink(users: list[dict], reason: str, raw: bytes) -> int:
    from creator_sync.webhooks.dead_letters import record_unification_errors

    return record_unification_errors(users, reason=reason, raw=raw)


class Receiver:
    """Wires the app to its state; everything is created lazily (the module is imported by every Airflow
    component that loads plugins, only the API server serves requests)."""

    def __init__(
        self,
        store=None,
        trigger=None,
        insightiq_secret: Callable[[], str | None] | None = None,
        insider_token: Callable[[], str | None] | None = None,
        dead_letter_sink: Callable[[list[dict], str, bytes], int] | None = None,
        debounce_s: float | None = None,
        background: bool = True,
        offboarding=None,
    ):
        self._store = store
        self._trigger = trigger
        self.insightiq_secret = insightiq_secret or _Cached(lambda: connection_password(INSIGHTIQ_CONN_ID))
        self.insider_token = insider_token or _Cached(lambda: connection_password(INSIDER_CONN_ID))
        self.dead_letter_sink = dead_letter_sink or default_dead_letter_sink
        self.debounce_s = settings.current().webhook_debounce_s if debounce_s is None else debounce_s
        self.background = background
        self._coalescer = None
        self._lock = threading.Lock()
        self._offboarding = offboarding

    @property
    def store(self):
        with self._lock:
            if self._store is None:
                from creator_sync.store.webhooks import WebhookStore, make_engine

                self._store = WebhookStore(make_engine())
            return self._store

    @property
    def coalescer(self):
        store = self.store
        with self._lock:
            if self._coalescer is None:
                from creator_sync.webhooks.coalesce import Coalescer
                from creator_sync.webhooks.trigger import AirflowSyncTrigger

                self._coalescer = Coalescer(
                    store, self._trigger or AirflowSyncTrigger(), self.debounce_s, background=self.background
                )
            return self._coalescer

    @property
    def offboarding(self):
        with self._lock:
            if self._offboarding is None:
                from creator_sync.offboard.webhook import OffboardEvents

                self._offboarding = OffboardEvents()
            return self._offboarding

    def accept_event(self, body: bytes) -> dict:
        event = parse_event(body)
        # offboarding side effects are idempotent and run before the delivery is recorded
        # (docs/offboarding.md): a crash in between is repaired by the redelivery
        offboard = {} if self.store.delivery(event.event_id) else self.offboarding.handle(body, event)
        recorded = self.store.record_delivery(
            event.event_id, event.event, event.account_id, event.body_sha256, queue_account=event.starts_sync
        )
        if not recorded:
            return {"status": "duplicate", "id": event.event_id}
        if event.starts_sync:
            self.coalescer.poke()
            return {"status": "queued", "id": event.event_id, "account_id": event.account_id, **offboard}
        return {"status": "ignored", "id": event.event_id, "event": event.event, **offboard}


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` without reading all of it."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    return bytes(body)


def users_of(payload: object) -> list[dict]:
    """The users of an Insider callback: the Upsert body (``{"users": [...]}``), a list, or one user."""
    if isinstance(payload, dict) and "users" in payload:
        payload = payload["users"]
    elif isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload or not all(isinstance(u, dict) for u in payload):
        raise ValueError("expected an Upsert payload with a non-empty users[] of objects")
    if len(payload) > MAX_CALLBACK_USERS:
        raise HTTPException(413, f"more than {MAX_CALLBACK_USERS} users in one callback")
    return payload


def create_app(receiver: Receiver | None = None) -> FastAPI:
    receiver = receiver or Receiver()
    app = FastAPI(
        title="creator-sync webhooks",
        description="InsightIQ webhooks and Insider One error callbacks for creator-sync.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.receiver = receiver

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/webhooks/insightiq")
    async def insightiq_webhook(request: Request) -> dict:
        body = await read_body(request, MAX_WEBHOOK_BYTES)
        if not signature.signatures(request.headers):
            raise HTTPException(401, f"missing signature header ({' or '.join(signature.SIGNATURE_HEADERS)})")
        secret = await run_in_threadpool(receiver.insightiq_secret)
        if not secret:
            raise HTTPException(503, "InsightIQ client secret is not configured")
        if not signature.verify(body, request.headers, [secret]):
            log.warning("Rejected an InsightIQ webhook with a bad signature (%d bytes)", len(body))
            raise HTTPException(401, "invalid signature")
        try:
            return await run_in_threadpool(receiver.accept_event, body)
        except MalformedEvent as exc:
            raise HTTPException(400, str(exc)) from None

    @app.post("/webhooks/insider-errors")
    async def insider_errors(request: Request, token: str | None = None) -> dict:
        if not token:
            raise HTTPException(401, "invalid callback token")
        insider_token = await run_in_threadpool(receiver.insider_token)
        if not callback.token_matches(token, insider_token):
            raise HTTPException(401, "invalid callback token")
        body = await read_body(request, MAX_CALLBACK_BYTES)
        try:
            users = users_of(bounded_json.loads(body))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPException(400, f"malformed callback: {exc}") from None
        count = await run_in_threadpool(receiver.dead_letter_sink, users, UNIFICATION_ERROR, body)
        log.warning("Insider One reported %d user(s) failing unification, %d stored", len(users), count)
        return {"status": "dead_lettered", "users": count, "ignored": len(users) - count}

    return app
