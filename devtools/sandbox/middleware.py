"""One pure-ASGI middleware for all sandboxes: counts statuses and concurrency, runs the service's gate
(auth + limits, at request arrival) and then fault injection. Faults of devtools.sandbox.faults.BEFORE_KINDS
answer before the endpoint does any work; AFTER_KINDS let the endpoint process the request and then lose
its answer (drop the connection, hold it past the client's timeout, or truncate the body).
/_sandbox/* bypasses all of it.

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
        svc.inflight += 1
        svc.max_concurrent = max(svc.max_concurrent, svc.inflight)
        try:
            if svc.faults.latency_seconds > 0:
                await asyncio.sleep(svc.faults.latency_seconds)
            fault = svc.faults.draw()
            if fault == "slow":
                await asyncio.sleep(svc.faults.slow_seconds)
            elif fault in AFTER_KINDS:
                await self._after(fault, scope, receive, send, counting_send)
                return
            elif fault is not None:
                await self._fault(fault, scope, receive, send, counting_send)
                return
            await self.app(scope, receive, counting_send)
        finally:
            svc.inflight -= 1
            release()

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

    async def _after(self, fault: str, scope, receive, send, counting_send) -> None:
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
        sender = send if fault == "truncated_after" else counting_send
        await sender({"type": "http.response.start", "status": status, "headers": headers})
        await sender({"type": "http.response.body", "body": payload})


def _abort(send, fault: str) -> None:
    """Close the client connection at once (uvicorn's transport), without sending anything."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError(f"sandbox injected fault: {fault}")
    transport.abort()
    cycle.disconnected = True
