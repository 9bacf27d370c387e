"""Insider web push sandbox: POST /v1/single (Bearer key, unique titles <= 100 chars, 30 req/min)."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from devtools.sandbox.inspection import inspection_router
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.middleware import SandboxMiddleware
from devtools.sandbox.service import Service, _noop

MAX_TITLE = 100


def msg(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


class WebPushService(Service):
    name = "web_push"

    def __init__(self, seed: int, key: str, rate: float, window: float, **kw) -> None:
        self.key = key
        super().__init__(seed, **kw)
        self.limiters["requests"] = FixedWindowLimiter("requests", rate, window)
        self.reset_state()

    def reset_state(self) -> None:
        self.campaigns: dict[str, dict] = {}
        self.next_id = 25696

    def gate(self, scope, headers: Headers):
        if headers.get("authorization") != f"Bearer {self.key}":
            return msg(401, "Unauthorized"), _noop
        retry = self.limiters["requests"].acquire(self.key)
        if retry is not None:
            return self.rate_limited({"message": "Too Many Requests: request limit exceeded"}, retry), _noop
        return None, _noop

    def error_body(self, status: int, message: str) -> dict:
        return {"message": message}

    def extra_stats(self) -> dict:
        return {"campaigns": len(self.campaigns)}


def create_web_push_app(svc: WebPushService):
    app = FastAPI(
        title="Insider web push sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.include_router(inspection_router(svc))

    @app.post("/v1/single", status_code=201)
    async def single(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return msg(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return msg(400, "request body must be a JSON object")
        for field in ("partner_id", "title", "language"):
            if not isinstance(body.get(field), str) or not body[field]:
                return msg(400, f"{field} is required (string)")
        if "is_all" in body and not isinstance(body["is_all"], bool):
            return msg(400, "is_all must be a boolean")
        title = body["title"]
        if len(title) > MAX_TITLE:
            return msg(400, f"title cannot be more than {MAX_TITLE} characters (got {len(title)})")
        if title in svc.campaigns:
            return msg(400, f"a campaign with the title {title!r} already exists")
        campaign_id = svc.next_id
        svc.next_id += 1
        svc.campaigns[title] = {"campaign_id": campaign_id, **body}
        return {"success": True, "campaign_id": campaign_id}

    @app.get("/_sandbox/campaigns")
    def campaigns():
        return {"data": list(svc.campaigns.values())}

    return SandboxMiddleware(app, svc)
