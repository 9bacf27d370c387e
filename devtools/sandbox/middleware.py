"""One pure-ASGI middleware for all sandboxes: counts statuses and concurrency, runs the service's gate
(auth + limits, at request arrival) and then fault injection. Faults of devtools.sandbox.faults.BEFORE_KINDS
answer before the endpoint does any work; AFTER_KINDS let the endpoint process the request and then lose
its answer (drop the connection, hold it past the client's timeout, or truncate the body).
/_sandbox/* bypasses all of it.

Client disconnects: uvicorn does not cancel a request's task when its client goes away; it marks the
request disconnected, after which ``receive()`` answers ``http.disconnect`` (even for a body it has already
read) and ``send()`` does nothing. So by default a request whose client gives up during ``latency_seconds``
or the ``slow`` fault's sleep is NOT processed: the endpoint's body read raises Starlette's
``ClientDisconnect``, the error middleware "answers" 500 (counted in ``requests_by_status``, never
delivered) and the server logs the traceback. With the service's ``complete_after_disconnect`` on, the body
is read up front (before the latency and the fault) and the rest of the request runs as a task shielded
from cancellation: the request is processed even though nobody reads the answer, as a real server that has
accepted a request does. A request whose client disconnects before its whole body arrived cannot be
processed in either mode (counted as ``disconnected_before_body``).

A request carrying ``X-Sandbox-Sent-At`` (the client's send time, epoch seconds; only bench clients set it)
has its send-to-arrival delay recorded at the moment the limits count it (see Service.note_sent_at)."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from devtools.sandbox.faults import AFTER_KINDS
from devtools.sandbox.service import Service

log = logging.getLogger(__name__)
MALFORMED_BODY = b'{"data": [{"id": "truncated'
SENT_AT_HEADER = "x-sandbox-sent-at"


class SandboxMiddleware:
    def __init__(self, app, service: Service) -> None:
        self.app = app
        self.service = service
        self._work: set[asyncio.Future] = set()  # shielded requests still running (complete_after_disconnect)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        svc = self.service

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                svc.requests_by_status[str(message["status"])] += 1
            await send(message)

        counting_send = svc.readings.throttle_send(counting_send)  # bare_429 / throttle_403 (readings.py)
        headers = Headers(scope=scope)
        sent_at = headers.get(SENT_AT_HEADER)
        if sent_at is not None:
            svc.note_sent_at(sent_at, time.time())
        rejection, release = svc.gate(scope, headers)
        if rejection is not None:
            await rejection(scope, receive, counting_send)
            return
        if not svc.complete_after_disconnect:
            await self._handle(scope, receive, send, counting_send, release)
            return
        replay = await _read_body(receive)
        if replay is None:
            svc.requests_by_status["disconnected_before_body"] += 1
            release()
            return
        work = asyncio.ensure_future(self._handle(scope, replay, send, counting_send, release))
        self._work.add(work)
        work.add_done_callback(self._work.discard)
        await asyncio.shield(work)

    async def _handle(self, scope, receive, send, counting_send, release) -> None:
        """Latency, fault draw and endpoint for one admitted request."""
        svc = self.service
        svc.inflight += 1
        svc.max_concurrent = max(svc.max_concurrent, svc.inflight)
        try:
            if svc.faults.latency_seconds > 0:
                await asyncio.sleep(svc.faults.latency_seconds)
            fault = svc.faults.draw()
            answer_send = counting_send
            if fault == "slow":
                await asyncio.sleep(svc.faults.slow_seconds)
                answer_send = self._held_send(send, delivered=not _client_gone(send))
            elif fault in AFTER_KINDS:
                await self._after(fault, scope, receive, send)
                return
            elif fault is not None:
                await self._fault(fault, scope, receive, send, counting_send)
                return
            if svc.complete_after_disconnect and _client_gone(send):
                svc.processed_after_disconnect += 1
            await self.app(scope, receive, answer_send)
        finally:
            svc.inflight -= 1
            release()

    def _held_send(self, send, delivered: bool):
        """``send`` counting the answer's status as ``<status>_held``: a slow / timeout_after fault held it
        (a fault already counted in faults_injected, so its status is not one of the plain statuses).
        ``delivered``: the client was still connected when the hold ended."""
        svc = self.service

        async def held_send(message) -> None:
            if message["type"] == "http.response.start":
                svc.requests_by_status[f"{message['status']}_held"] += 1
                svc.note_held_answer(delivered, message["status"])
            await send(message)

        return svc.readings.throttle_send(held_send)

    async def _fault(self, fault: str, scope, receive, send, counting_send) -> None:
        svc = self.service
        if fault == "5xx":
            status = svc.faults.status_5xx()
            body = svc.error_body(status, f"sandbox injected fault: HTTP {status}")
            response: Response = JSONResponse(body, status_code=status)
        elif fault == "429":
            body = svc.error_body(429, "rejected: too many requests")
            response = JSONResponse(body, status_code=429, headers={"Retry-After": "1"})
        elif fault == "malformed":
            response = Response(MALFORMED_BODY, status_code=200, media_type="application/json")
        else:  # drop: close the connection without any response
            svc.requests_by_status["dropped"] += 1
            _abort(send, "drop")
            return
        await response(scope, receive, counting_send)

    async def _after(self, fault: str, scope, receive, send) -> None:
        """Process the request for real, then lose its answer the way ``fault`` says."""
        svc = self.service
        start: dict = {}
        body = bytearray()

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        if fault == "drop_after":
            svc.requests_by_status["dropped_after_processing"] += 1
            _abort(send, "drop_after")
            return
        status = int(start.get("status", 500))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if fault == "truncated_after":
            payload = bytes(body[: len(body) // 2])
            svc.requests_by_status[f"{status}_truncated"] += 1
        else:  # timeout_after: the client gives up before this answer comes
            await asyncio.sleep(svc.faults.slow_seconds)
            payload = bytes(body)
        headers.append((b"content-length", str(len(payload)).encode()))
        delivered = not _client_gone(send)
        sender = send if fault == "truncated_after" else self._held_send(send, delivered)
        await sender({"type": "http.response.start", "status": status, "headers": headers})
        await sender({"type": "http.response.body", "body": payload})


async def _read_body(receive):
    """Read the whole request body now; a ``receive`` that replays it (then defers to the server's), or
    None when the client disconnected before the body was complete."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


def _client_gone(send) -> bool:
    """Whether uvicorn has seen this request's client disconnect."""
    return bool(getattr(getattr(send, "__self__", None), "disconnected", False))


def _abort(send, fault: str) -> None:
    """Close the client connection at once (uvicorn's transport), without sending anything."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError(f"sandbox injected fault: {fault}")
    transport.abort()
    cycle.disconnected = True
