"""InsightIQ dated collections (contents, content groups, comments, income, commerce), webhooks, the
InsightIQ-only /_sandbox endpoints, and the app factory."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from devtools.sandbox import changes, ids
from devtools.sandbox.data import PLATFORMS
from devtools.sandbox.insightiq import InsightIQService, add_core_routes
from devtools.sandbox.inspection import inspection_router
from devtools.sandbox.iq_common import (
    ApiError,
    encoded,
    envelope,
    error_response,
    not_found,
    paging,
    parse_date,
)
from devtools.sandbox.middleware import SandboxMiddleware
from devtools.sandbox.new_accounts import add_new_account_routes, dispatch_items
from devtools.sandbox.offboarding import add_offboarding_routes
from devtools.sandbox.people import REASONS
from devtools.sandbox.records import iso
from devtools.sandbox.webhooks import KNOWN_EVENTS

# path -> (collection, from param, to param, account_id required, has get/refresh/fetch-historic/search)
COLLECTIONS = {
    "/v1/social/contents": ("contents", "from_date", "to_date", False, True),
    "/v1/social/content-groups": ("content_groups", "from_date", "to_date", False, True),
    "/v1/social/comments": ("comments", "from_date", "to_date", True, False),
    "/v1/social/income/transactions": (
        "social_transactions",
        "transaction_from_date",
        "transaction_to_date",
        True,
        True,
    ),
    "/v1/social/income/payouts": ("social_payouts", "payout_from_date", "payout_to_date", True, True),
    "/v1/commerce/income/transactions": (
        "commerce_transactions",
        "transaction_from_date",
        "transaction_to_date",
        True,
        True,
    ),
    "/v1/commerce/income/payouts": ("commerce_payouts", "payout_from_date", "payout_to_date", True, True),
    "/v1/commerce/income/balances": ("commerce_balances", "balance_from_date", "balance_to_date", True, True),
}
MAX_SEARCH_IDS = 100
# the webhook a finished fetch-historic job sends for the items it added
HISTORIC_EVENTS = {
    "contents": "CONTENTS.ADDED",
    "social_transactions": "TRANSACTIONS.ADDED",
    "social_payouts": "PAYOUTS.ADDED",
}


def add_collection_routes(app: FastAPI, svc: InsightIQService, path: str, spec: tuple) -> None:
    name, from_param, to_param, account_required, full = spec
    ds, render = svc.ds, svc.render
    col = ds.collections[name]
    label = name.rstrip("s")

    def list_items(request: Request):
        q = request.query_params
        offset, limit = paging(request)
        account = None
        if q.get("account_id"):
            account = svc.named_account(q["account_id"])
        elif account_required or (name == "contents" and svc.readings.contents_require_account_id):
            raise ApiError(400, "missing_parameter", "query parameter 'account_id' is required")
        t_from = parse_date(from_param, q.get(from_param), end=False)
        t_to = parse_date(to_param, q.get(to_param), end=True)
        rows = [render.item(name, i) for i in ds.list_items(name, account, t_from, t_to, offset, limit)]
        return encoded(envelope(rows, offset, limit, q.get(from_param), q.get(to_param)))

    app.add_api_route(path, list_items, methods=["GET"], name=f"list_{name}")
    if not full:
        return

    def account_job(body: dict = Body(...)):  # noqa: B008
        svc.named_account(body.get("account_id"))
        return JSONResponse({"account_id": body["account_id"], "status": "IN_PROGRESS"}, status_code=202)

    def search(body: dict = Body(...)):  # noqa: B008
        wanted = body.get("ids")
        if not isinstance(wanted, list) or not wanted:
            raise ApiError(400, "missing_parameter", "body field 'ids' is required (non-empty list)")
        if len(wanted) > MAX_SEARCH_IDS:
            raise ApiError(400, "invalid_parameter", f"at most {MAX_SEARCH_IDS} ids per request")
        found = [svc.index(col.kind, str(v), ds.size(name)) for v in wanted]
        return {"data": [render.item(name, i) for i in found if i is not None and not ds.is_hidden(name, i)]}

    def get_item(item_id: str):
        i = svc.index(col.kind, item_id, ds.size(name))
        if i is None or ds.is_hidden(name, i):
            raise not_found(label, item_id)
        return render.item(name, i)

    async def fetch_historic(body: dict = Body(...)):  # noqa: B008
        """A job that makes the account's items from `from_date` on listable `historic_job_seconds` later
        (data.History). The docs show `from_date` in every sample and say nothing of its absence: without it
        the job covers the account's whole past."""
        account = svc.named_account(body.get("account_id"))
        raw = body.get("from_date")
        start = parse_date("from_date", str(raw), end=False) if raw else -(2**40)
        now = max(time.time(), ds.now)
        finish = ds.history.request(name, account, start, now)
        if ds.history.webhooks and name in HISTORIC_EVENTS:
            asyncio.get_running_loop().call_later(
                max(0.0, finish - now), announce_historic, name, account, start, now
            )
        return JSONResponse({"account_id": body["account_id"], "status": "IN_PROGRESS"}, status_code=202)

    def announce_historic(name: str, account: int, start: int, requested: float) -> None:
        """`*.ADDED` for the items the job made listable (at most 100 ids per event)."""
        bound = ds.history.visible_from(name, account, requested)  # what was listable before the job
        items = [
            i
            for i in ds.list_items(name, account, start, None, 0, 2**40)
            if bound is None or ds.epoch(name, i) < bound
        ]
        if not items:
            return
        base = {
            "account_id": ds.codec.make(ids.ACCOUNT, account),
            "user_id": ds.codec.make(ids.USER, int(ds.acc_creator[account])),
            "last_updated_time": iso(time.time()).replace("T", " "),
        }
        dispatch_items(svc.hub, HISTORIC_EVENTS[name], base, [ds.codec.make(col.kind, i) for i in items])

    app.add_api_route(f"{path}/refresh", account_job, methods=["POST"], name=f"refresh_{name}")
    app.add_api_route(f"{path}/fetch-historic", fetch_historic, methods=["POST"], name=f"historic_{name}")
    app.add_api_route(f"{path}/search", search, methods=["POST"], name=f"search_{name}")
    app.add_api_route(f"{path}/{{item_id}}", get_item, methods=["GET"], name=f"get_{name}")


def add_webhook_routes(app: FastAPI, svc: InsightIQService) -> None:
    hub = svc.hub

    def validated(body: dict) -> tuple[str, list[str]]:
        url, events = body.get("url"), body.get("events")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "invalid_parameter", "body field 'url' is required (http(s) URL)")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise ApiError(400, "invalid_parameter", "body field 'events' is required (list of event names)")
        unknown = sorted(set(events) - KNOWN_EVENTS)
        if unknown:
            raise ApiError(
                400, "invalid_parameter", f"unknown event name(s) in 'events': {', '.join(unknown)}"
            )
        return url, events

    @app.post("/v1/webhooks", status_code=201)
    def create(body: dict = Body(...)):  # noqa: B008
        url, events = validated(body)
        now = iso(time.time())
        hub.created += 1
        wid = svc.ds.codec.make(ids.WEBHOOK, hub.created)
        hub.hooks[wid] = {
            "id": wid,
            "url": url,
            "events": events,
            "name": body.get("name"),
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        return hub.hooks[wid]

    @app.get("/v1/webhooks")
    def list_hooks(request: Request):
        offset, limit = paging(request)
        return envelope(list(hub.hooks.values())[offset : offset + limit], offset, limit)

    def hook_or_404(webhook_id: str) -> dict:
        if webhook_id not in hub.hooks:
            raise not_found("webhook", webhook_id)
        return hub.hooks[webhook_id]

    @app.get("/v1/webhooks/{webhook_id}")
    def get_hook(webhook_id: str):
        return hook_or_404(webhook_id)

    @app.put("/v1/webhooks/{webhook_id}")
    def update_hook(webhook_id: str, body: dict = Body(...)):  # noqa: B008
        hook = hook_or_404(webhook_id)
        url, events = validated(body)
        hook.update(url=url, events=events, updated_at=iso(time.time()))
        if "is_active" in body:
            hook["is_active"] = bool(body["is_active"])
            hub.reactivated(hook)
        return hook

    @app.delete("/v1/webhooks/{webhook_id}")
    def delete_hook(webhook_id: str):
        hook = hook_or_404(webhook_id)
        del hub.hooks[webhook_id]
        return hook

    @app.post("/v1/webhooks/send", status_code=202)
    async def send(body: dict = Body(...)):  # noqa: B008
        payload = body.get("payload")
        if not isinstance(payload, dict) or not payload.get("event"):
            raise ApiError(400, "missing_parameter", "body field 'payload' with an 'event' is required")
        event_id, count = hub.dispatch(payload)
        return {"id": event_id, "event": payload["event"], "webhooks": count}


def add_sandbox_routes(app: FastAPI, svc: InsightIQService) -> None:
    ds = svc.ds

    @app.get("/_sandbox/creators/invalid")
    def invalid_creators():
        rows = [
            {"user_id": ds.codec.make(ids.USER, int(c)), "reason": REASONS[int(ds.reason[c]) - 1]}
            for c in np.flatnonzero(ds.reason > 0)
        ]
        return {"data": rows, "count": len(rows)}

    @app.post("/_sandbox/mutate")
    async def mutate(body: dict = Body(...)):  # noqa: B008
        """Change chosen creators (`user_ids`) or a random `fraction` of them: `kinds` (default
        ["profiles"]) of changes.KINDS; see devtools/sandbox/changes.py. Every
        change is announced by the signed webhooks InsightIQ would send."""
        try:
            kinds, per = changes.parse_request(body)
        except changes.ChangeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "user_ids" in body:
            creators = [svc.creator(str(u)) for u in body["user_ids"]]
            if any(c is None for c in creators):
                return JSONResponse({"error": "unknown user id in user_ids"}, status_code=400)
        else:
            fraction = float(body.get("fraction", 0.01))
            k = min(ds.n, max(1, round(fraction * ds.n)))
            rng = np.random.default_rng([ds.seed, svc.mutation_rounds])
            creators = sorted(int(c) for c in rng.choice(ds.n, size=k, replace=False))
        svc.mutation_rounds += 1
        now = int(max(time.time(), ds.now + 1))
        payloads, summary = changes.generate(
            ds, lambda a: svc.render.account(a)["status"], creators, kinds, per, now
        )
        for payload in payloads:
            svc.hub.dispatch(payload)
        return {
            "user_ids": [ds.codec.make(ids.USER, c) for c in creators],
            "profile_ids": summary["items"].get("profiles", []),
            **summary,
        }

    @app.post("/_sandbox/late-content")
    def late_content(body: dict = Body(...)):  # noqa: B008
        """A content item that InsightIQ synced late: dated `published_at` (in the past), listed from now on
        by /v1/social/contents (date filters and paging respected), by id and by search."""
        account = svc.account(str(body.get("account_id") or ""))
        if account is None:
            return JSONResponse({"error": "body field 'account_id' must name an existing account"}, 400)
        if not PLATFORMS[int(ds.acc_platform[account])][2]:
            return JSONResponse({"error": "this account's platform has no contents (commerce)"}, 400)
        try:
            published = parse_date("published_at", str(body.get("published_at") or ""), end=False)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, 400)
        now = max(int(time.time()), ds.now)
        if published is None or published > now:
            return JSONResponse(
                {"error": "body field 'published_at' must be an ISO timestamp in the past"}, 400
            )
        item = ds.add_late("contents", account, published, now)
        return svc.render.item("contents", item)

    @app.post("/_sandbox/connect")
    async def connect(body: dict = Body(...)):  # noqa: B008
        """The account connects now (a new connection): its status becomes CONNECTED, InsightIQ holds only
        the default window of its past (`history_default_days`) until fetch-historic jobs ask for more
        (data.History), and `ACCOUNTS.CONNECTED` goes to the webhook subscribers."""
        account = svc.account(str(body.get("account_id") or ""))
        if account is None:
            return JSONResponse({"error": "body field 'account_id' must name an existing account"}, 400)
        now = int(max(time.time(), ds.now))
        ds.account_overrides.setdefault(account, {}).update(status="CONNECTED", status_at=now)
        ds.history.connected[account] = now
        for key in [k for k in ds.history.jobs if k[1] == account]:
            del ds.history.jobs[key]
        data = {
            "account_id": ds.codec.make(ids.ACCOUNT, account),
            "user_id": ds.codec.make(ids.USER, int(ds.acc_creator[account])),
            "last_updated_time": iso(now).replace("T", " "),
        }
        event_id, _ = svc.hub.dispatch(
            {"event": "ACCOUNTS.CONNECTED", "name": "accounts connected", "data": data}
        )
        hidden = {
            name: bound + ds.base
            for name, bound in ((n, ds.hidden(n, account).get(account)) for n in HISTORIC_EVENTS)
            if bound is not None
        }
        return {
            **data,
            "connected_at": iso(now),
            "hidden_before": {n: iso(t) for n, t in hidden.items()},
            "event_id": event_id,
        }

    @app.get("/_sandbox/webhooks/deliveries")
    def deliveries():
        return {"counts": dict(svc.hub.deliveries), "recent": svc.hub.recent[-200:]}


def create_insightiq_app(svc: InsightIQService):
    app = FastAPI(
        title="InsightIQ sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError):
        return error_response(400, "invalid_request_body", f"invalid request body: {exc.errors()[:3]}")

    from starlette.exceptions import HTTPException

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(
            exc.status_code, "not_found" if exc.status_code == 404 else "http_error", str(exc.detail)
        )

    app.include_router(inspection_router(svc))
    add_sandbox_routes(app, svc)
    add_offboarding_routes(app, svc)
    add_new_account_routes(app, svc)
    add_core_routes(app, svc)
    for path, spec in COLLECTIONS.items():
        add_collection_routes(app, svc, path, spec)
    add_webhook_routes(app, svc)
    return SandboxMiddleware(app, svc)
