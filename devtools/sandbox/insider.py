"""Insider One unification sandbox: Upsert, User Profile and Delete User Attribute APIs.

Quota rule for the Profile API: cost = 1 + 0.5 x (number of wanted event types) units per call (the doc's
example with 3 wanted events costs 2.5); ``--insider-profile-quota`` units per ``--insider-profile-window``.

Test knobs (``POST /_sandbox/config``; kept across ``/_sandbox/reset`` like the other settings):
``ingestion_lag_seconds`` (the Profile API sees a processed write only that long after it was processed; see
insider_store), ``complete_after_disconnect`` (a request whose client has gone is processed all the same;
see middleware) and ``reject_uuids`` (users with these uuids fail inside an accepted upsert with a
unification error, the rest of the batch is stored).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from devtools.sandbox.callbacks import CallbackSender
from devtools.sandbox.data_governance import add_data_governance_routes
from devtools.sandbox.insider_store import UnificationError, UserStore
from devtools.sandbox.insider_validate import validate_identifiers, validate_user
from devtools.sandbox.inspection import inspection_router
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.middleware import SandboxMiddleware
from devtools.sandbox.service import Service, _noop

MAX_BODY, MAX_USERS = 5_000_000, 1_000
TOO_MANY = {"error": "rejected: too many requests"}
REJECTED = "sandbox reject_uuids: this user could not be unified with its profile"
UPSERT_PATHS = ("/api/user/v1/upsert", "/api/user/v1/attribute/delete")


class ConfiguredRejection(UnificationError):
    """A unification error the sandbox raises for a user listed in ``reject_uuids``."""


def err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class InsiderService(Service):
    name = "insider"

    def __init__(
        self,
        seed: int,
        partner: str,
        tokens: list[str],
        upsert_rate: float,
        upsert_window: float,
        quota: float,
        quota_window: float,
        ingestion_lag_seconds: float = 0.0,
        complete_after_disconnect: bool = False,
        **kw,
    ) -> None:
        self.partner, self.tokens = partner, set(tokens)
        super().__init__(seed, **kw)
        self.limiters["upsert"] = FixedWindowLimiter("upsert", upsert_rate, upsert_window)
        self.limiters["profile_quota"] = FixedWindowLimiter("profile_quota", quota, quota_window)
        self.store = UserStore(ingestion_lag_seconds)
        self.callbacks = CallbackSender()
        self.drop_attributes: set[str] = set()
        self.reject_uuids: set[str] = set()
        self.complete_after_disconnect = bool(complete_after_disconnect)
        self.reset_state()

    def reset_state(self) -> None:
        self.store.reset()
        self.upsert_requests = self.delete_requests = self.profile_requests = 0
        self.quota_used = 0.0
        self.unification_errors = {"identifiers": 0, "reject_uuids": 0}
        self.callbacks.outcomes.clear()

    def gate(self, scope, headers: Headers):
        partner = headers.get("x-partner-name")
        if not partner:
            return err(400, "X-PARTNER-NAME header is required: bad request"), _noop
        if partner != partner.lower():
            return err(400, "X-PARTNER-NAME must be lowercase: bad request"), _noop
        if headers.get("x-request-token") not in self.tokens or partner != self.partner:
            return err(403, "invalid partner name or request token: forbidden"), _noop
        if scope["path"] in UPSERT_PATHS:
            retry = self.limiters["upsert"].acquire(partner)
            if retry is not None:
                return self.rate_limited(TOO_MANY, retry), _noop
        return None, _noop

    def extra_stats(self) -> dict:
        s = self.store
        return {
            "users_stored": len(s.users),
            "events_stored": s.events_stored,
            "duplicate_events": s.duplicate_events,
            "events_by_skip_hook": dict(s.events_by_skip_hook),
            "upsert_requests": self.upsert_requests,
            "attribute_delete_requests": self.delete_requests,
            "profile_requests": self.profile_requests,
            "quota_used": self.quota_used,
            "error_callbacks": dict(self.callbacks.outcomes),
            "unification_errors": dict(self.unification_errors),
            "profile_pending_writes": s.pending_writes(),
        }

    def extra_config(self) -> dict:
        return {
            "drop_attributes": sorted(self.drop_attributes),
            "ingestion_lag_seconds": self.store.lag_seconds,
            "complete_after_disconnect": self.complete_after_disconnect,
            "reject_uuids": sorted(self.reject_uuids),
        }

    def configure_extra(self, values: dict) -> None:
        if "drop_attributes" in values:
            self.drop_attributes = set(values["drop_attributes"] or [])
        if "ingestion_lag_seconds" in values:
            lag = float(values["ingestion_lag_seconds"])
            if lag < 0:
                raise ValueError("ingestion_lag_seconds must be >= 0")
            self.store.lag_seconds = lag
        if "complete_after_disconnect" in values:
            flag = values["complete_after_disconnect"]
            if not isinstance(flag, bool):
                raise ValueError("complete_after_disconnect must be true or false")
            self.complete_after_disconnect = flag
        if "reject_uuids" in values:
            uuids = values["reject_uuids"] or []
            if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
                raise ValueError("reject_uuids must be a list of uuid strings")
            self.reject_uuids = set(uuids)


async def read_json(request: Request) -> dict | JSONResponse:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return err(400, "request body is bigger than maximum allowed size 5,000,000 bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return err(400, "request body is bigger than maximum allowed size 5,000,000 bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        return err(400, "request body is not valid JSON: bad request")
    return body if isinstance(body, dict) else err(400, "request body must be a JSON object: bad request")


def users_of(body: dict) -> list | JSONResponse:
    users = body.get("users")
    if not isinstance(users, list) or not users:
        return err(400, "users must be defined: bad request")
    if len(users) > MAX_USERS:
        return err(400, f"users must not be more than 1,000 per request (got {len(users):,}): bad request")
    return users


def result(ok: int, fail: int, errors: dict) -> dict:
    return {
        "data": {
            "successful": {"count": ok} if ok else {},
            "fail": {"count": fail, "errors": errors} if fail else {},
        }
    }


def create_insider_app(svc: InsiderService):
    app = FastAPI(
        title="Insider unification sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.include_router(inspection_router(svc))
    add_data_governance_routes(app, svc)
    store = svc.store

    @app.post("/api/user/v1/upsert")
    async def upsert(request: Request):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        users = users_of(body)
        if isinstance(users, JSONResponse):
            return users
        svc.upsert_requests += 1
        skip_hook = body.get("skip_hook") is True
        request_append = (
            body["append"] if "append" in body else (not body["not_append"] if "not_append" in body else None)
        )
        ok, fail, errors = 0, 0, {}
        for n, user in enumerate(users):
            user_errors: dict[str, list[str]] = {}
            validate_user(n, user, user_errors)
            if not user_errors:
                try:
                    if (user.get("identifiers") or {}).get("uuid") in svc.reject_uuids:
                        raise ConfiguredRejection(REJECTED)
                    store.upsert(user, skip_hook, request_append, svc.drop_attributes)
                    ok += 1
                    continue
                except UnificationError as exc:
                    kind = "reject_uuids" if isinstance(exc, ConfiguredRejection) else "identifiers"
                    svc.unification_errors[kind] += 1
                    user_errors[f"users.{n}.identifiers.unification"] = [str(exc)]
                    if body.get("error_callback_endpoint"):
                        svc.callbacks.post(
                            body["error_callback_endpoint"], {"skip_hook": skip_hook, "users": [user]}
                        )
            fail += 1
            errors.update(user_errors)
        return result(ok, fail, errors)

    @app.post("/api/user/v1/attribute/delete")
    async def delete_attributes(request: Request):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        users = users_of(body)
        if isinstance(users, JSONResponse):
            return users
        svc.delete_requests += 1
        ok, fail, errors = 0, 0, {}
        for n, user in enumerate(users):
            user_errors: dict[str, list[str]] = {}
            if not isinstance(user, dict):
                user_errors[f"users.{n}.type(object)"] = ["user must be an object"]
            else:
                validate_identifiers(
                    f"users.{n}", user.get("identifiers"), user.get("insider_id"), user_errors
                )
            found = set() if user_errors else store.find(user.get("identifiers"), user.get("insider_id"))
            if not user_errors and len(found) != 1:
                user_errors[f"users.{n}.identifiers.exists"] = ["no such user for these identifiers"]
            if user_errors:
                fail += 1
                errors.update(user_errors)
                continue
            store.delete_attributes(found.pop(), user)
            ok += 1
        return result(ok, fail, errors)

    @app.post("/api/user/v1/profile")
    async def profile(request: Request):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if not body.get("identifiers") and not body.get("insider_id"):
            return err(400, "identifiers must be defined: bad request")
        events = body.get("events")
        if not body.get("attributes") and not events:
            return err(400, "attributes or events must be defined: bad request")
        wanted = []
        if events is not None:
            if not isinstance(events, dict) or not all(
                isinstance(events.get(k), int | float) for k in ("start_date", "end_date")
            ):
                return err(400, "events.start_date and events.end_date must be epoch seconds: bad request")
            wanted = events.get("wanted")
            if not isinstance(wanted, list) or not all(
                isinstance(w, dict) and w.get("event_name") for w in wanted
            ):
                return err(400, "events.wanted must be a list of {event_name, params}: bad request")
        cost = 1 + 0.5 * len(wanted)
        retry = svc.limiters["profile_quota"].acquire(svc.partner, cost)
        if retry is not None:
            return JSONResponse(TOO_MANY, status_code=429, headers={"Retry-After": str(retry)})
        svc.profile_requests += 1
        svc.quota_used += cost
        found = store.find(body.get("identifiers"), body.get("insider_id"))
        now = time.monotonic()  # the ingestion-lag clock (insider_store)
        if len(found) != 1 or not store.visible(iid := found.pop(), now):
            return err(404, "no such user for these identifiers: no data")
        user = store.users[iid]
        out: dict = {}
        if body.get("attributes"):
            attrs = store.visible_attributes(iid, now)
            picked = {}
            for name in body["attributes"]:
                source = attrs.get("custom", {}) if name.startswith("c_") else attrs
                key = name[2:] if name.startswith("c_") else name
                if key in source:
                    picked[name] = source[key]
            out["attributes"] = picked | {"iid": user["insider_id"]}
        if events is not None:
            start, end = events["start_date"], events["end_date"]
            out["events"] = {w["event_name"]: _events(user, w, start, end, now) for w in wanted}
        if body.get("quota"):
            lim = svc.limiters["profile_quota"]
            out["quota"] = {"cost": cost, "used": lim.used(svc.partner), "total": lim.rate}
        return out

    @app.get("/_sandbox/users")
    def sandbox_users(offset: int = 0, limit: int = 100):
        ids = list(store.users)[offset : offset + limit]
        return {
            "data": [store.public(i) for i in ids],
            "total": len(store.users),
            "offset": offset,
            "limit": limit,
        }

    @app.post("/_sandbox/users/lookup")
    def sandbox_users_lookup(body: dict = Body(...)):  # noqa: B008
        """The stored users with these uuids (`{"uuids": [...]}`): `{"data": {uuid: user or null}}`."""
        uuids = body.get("uuids")
        if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
            return err(400, "body field 'uuids' must be a list of uuid strings")
        found = {u: store.index.get(("uuid", u)) for u in uuids}
        return {"data": {u: (store.public(iid) if iid else None) for u, iid in found.items()}}

    return SandboxMiddleware(app, svc)


def _events(user: dict, wanted: dict, start: float, end: float, now: float) -> list[dict]:
    """The user's ``wanted`` events in [start, end] that are visible at ``now`` (ingestion lag), newest
    first."""
    params = wanted.get("params") or []
    rows = []
    for event in user["events"]:
        if (
            event["event_name"] == wanted["event_name"]
            and start <= event["epoch"] <= end
            and event.get("visible_at", now) <= now
        ):
            flat = {**event["params"], **(event["params"].get("custom") or {})}
            row = {p: flat[p] for p in params if p in flat}
            row["created_date"] = datetime.fromtimestamp(event["epoch"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append((event["epoch"], row))
    rows.sort(key=lambda pair: -pair[0])  # newest first, as in the doc's example
    return [row for _, row in rows]
