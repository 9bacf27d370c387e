"""InsightIQ sandbox: service (Basic auth + fixed-window and concurrency limits per client) and the core
resources (work platforms, users, SDK tokens, accounts, profiles, audience)."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections import Counter

from fastapi import Body, FastAPI, Request
from starlette.datastructures import Headers

from devtools.sandbox import ids
from devtools.sandbox.data import PLATFORMS, Dataset
from devtools.sandbox.iq_common import (
    ApiError,
    encoded,
    envelope,
    error_response,
    not_found,
    paging,
    required,
)
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.records import Renderer, iso, platform_ref
from devtools.sandbox.service import Service
from devtools.sandbox.webhooks import WebhookHub


class InsightIQService(Service):
    name = "insightiq"

    def __init__(
        self, ds: Dataset, client_id: str, secret: str, rate: float, window: float, concurrency: int, **kw
    ) -> None:
        self.client_id, self.secret, self.concurrency = client_id, secret, int(concurrency)
        self.inflight_by_client: Counter[str] = Counter()
        super().__init__(ds.seed, **kw)
        self.limiters["requests"] = FixedWindowLimiter("requests", rate, window)
        self.ds, self.render = ds, Renderer(ds)
        self.hub = WebhookHub(secret, self.readings)
        ds.hide_disconnected = lambda: self.readings.disconnected_data == "hidden"
        self.reset_state()

    def reset_state(self) -> None:
        self.created_users: dict[str, dict] = {}
        self.external_ids: dict[str, str] = {}
        self.ds.mutations.clear()
        self.ds.account_overrides.clear()
        self.ds.late.clear()
        self.ds.history.clear()
        self.ds.drop_added()
        self.hub.reset()
        self.mutation_rounds = 0

    def authenticate(self, header: str | None) -> str | None:
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            client, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return client if (client, secret) == (self.client_id, self.secret) else None

    def gate(self, scope, headers: Headers):
        client = self.authenticate(headers.get("authorization"))
        if client is None:
            return error_response(
                401,
                "invalid_credentials",
                "Authentication failed: invalid client id or secret (HTTP Basic auth required)",
            ), _noop
        if self.inflight_by_client[client] >= self.concurrency:
            self.extra_429s += 1
            return self._too_many(1, f"too many concurrent requests (max {self.concurrency})"), _noop
        retry = self.limiters["requests"].acquire(client)
        if retry is not None:
            lim = self.limiters["requests"]
            return self._too_many(
                retry, f"rate limit exceeded: {lim.rate:g} requests per {lim.window:g}s"
            ), _noop
        self.inflight_by_client[client] += 1

        def release() -> None:
            self.inflight_by_client[client] -= 1

        return None, release

    def error_body(self, status: int, message: str) -> dict:
        return json.loads(error_response(status, "sandbox_fault", message).body)

    def _too_many(self, retry: int, message: str):
        return error_response(429, "rate_limit_exceeded", message, headers={"Retry-After": str(retry)})

    def extra_stats(self) -> dict:
        return {
            "creators": self.ds.n,
            "invalid_creators": int((self.ds.reason > 0).sum()),
            "invalid_by_reason": self.ds.invalid_by_reason(),
            "accounts": self.ds.accounts,
            "items": {name: self.ds.size(name) for name in self.ds.collections},
            "late_items": {name: len(items) for name, items in self.ds.late.items() if items},
            "created_users": len(self.created_users),
            "mutated_creators": len(self.ds.mutations),
            "webhooks": len(self.hub.hooks),
            "webhook_deliveries": dict(self.hub.deliveries),
            "webhooks_deactivated": self.hub.deactivated,
        }

    def extra_config(self) -> dict:
        h = self.ds.history
        return {
            "concurrency": self.concurrency,
            "history_default_days": h.default_days,
            "historic_job_seconds": h.job_seconds,
            "historic_webhooks": h.webhooks,
        }

    def configure_extra(self, values: dict) -> None:
        if "concurrency" in values:
            self.concurrency = int(values["concurrency"])
        h = self.ds.history
        for key, attr in (("history_default_days", "default_days"), ("historic_job_seconds", "job_seconds")):
            if key in values:
                value = float(values[key])
                if value < 0:
                    raise ValueError(f"{key} must be >= 0, got {value}")
                setattr(h, attr, value)
        if "historic_webhooks" in values:
            value = values["historic_webhooks"]
            h.webhooks = (
                value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)
            )

    # -- id helpers -------------------------------------------------------------------------------------
    def index(self, kind: int, value: str | None, size: int) -> int | None:
        i = self.ds.codec.parse(value, kind) if value else None
        return i if i is not None and i < size else None

    def creator(self, user_id: str) -> int | None:
        return self.index(ids.USER, user_id, self.ds.n)

    def account(self, account_id: str | None) -> int | None:
        return self.index(ids.ACCOUNT, account_id, self.ds.accounts)

    def account_or_404(self, account_id: str | None) -> int:
        a = self.account(account_id)
        if a is None:
            raise not_found("account", str(account_id))
        return a

    def named_account(self, account_id: str | None) -> int:
        """The account a request names (404 when there is none), refused with a 400 while it is
        disconnected under the `disconnected_data=refused` reading (readings.py)."""
        a = self.account_or_404(account_id)
        if self.readings.disconnected_data == "refused" and self.ds.disconnected(a):
            raise ApiError(
                400,
                "account_not_connected",
                f"account with id {account_id!r} is not connected (status {self.ds.status(a)}): bad request",
            )
        return a

    def shown(self, account: int) -> bool:
        """Whether the account's items are shown (not under `disconnected_data=hidden` while disconnected)."""
        return not (self.ds.hide_disconnected() and self.ds.disconnected(account))

    def account_candidates(self, q) -> list[int] | range:
        ds = self.ds
        cands = None
        if q.get("account_id"):
            a = self.account(q["account_id"])
            cands = [] if a is None else [a]
        if q.get("user_id"):
            c = self.creator(q["user_id"])
            mine = list(ds.accounts_of(c)) if c is not None else []
            cands = mine if cands is None else [a for a in cands if a in mine]
        if q.get("work_platform_id"):
            p = next((i for i, pl in enumerate(PLATFORMS) if pl[0] == q["work_platform_id"]), None)
            if p is None:
                return []
            if cands is None:
                return ds.accounts_on_platform(p)
            cands = [a for a in cands if int(ds.acc_platform[a]) == p]
        return range(ds.accounts) if cands is None else cands


def _noop() -> None:
    return None


def add_core_routes(app: FastAPI, svc: InsightIQService) -> None:
    ds, render = svc.ds, svc.render

    @app.get("/v1/work-platforms")
    def work_platforms(request: Request):
        offset, limit = paging(request)
        name = (request.query_params.get("name") or "").lower()
        rows = [
            platform_ref(i) | {"category": "SOCIAL" if p[2] else "COMMERCE", "status": "ACTIVE"}
            for i, p in enumerate(PLATFORMS)
            if name in p[1].lower()
        ]
        return envelope(rows[offset : offset + limit], offset, limit)

    @app.get("/v1/work-platforms/{platform_id}")
    def work_platform(platform_id: str):
        for i, p in enumerate(PLATFORMS):
            if p[0] == platform_id:
                return platform_ref(i) | {"category": "SOCIAL" if p[2] else "COMMERCE", "status": "ACTIVE"}
        raise not_found("work_platform", platform_id)

    @app.get("/v1/users")
    def users(request: Request):
        offset, limit = paging(request)
        rows = [render.user(c) for c in range(offset, min(ds.n, offset + limit))]
        extra = list(svc.created_users.values())
        rows += extra[max(0, offset - ds.n) : max(0, offset - ds.n) + limit - len(rows)]
        return encoded(envelope(rows, offset, limit))

    def user_by_id(user_id: str) -> dict:
        c = svc.creator(user_id)
        if c is not None:
            return render.user(c)
        if user_id in svc.created_users:
            return svc.created_users[user_id]
        raise not_found("user", user_id)

    @app.get("/v1/users/external_id/{external_id}")
    def user_by_external(external_id: str):
        c = _generated_external(external_id, ds.n)
        if c is not None:
            return render.user(c)
        if external_id in svc.external_ids:
            return svc.created_users[svc.external_ids[external_id]]
        raise ApiError(404, "user_not_found", f"user with external_id {external_id!r} not found")

    @app.get("/v1/users/{user_id}")
    def user(user_id: str):
        return user_by_id(user_id)

    @app.post("/v1/users", status_code=201)
    def create_user(body: dict = Body(...)):  # noqa: B008
        name, external_id = body.get("name"), body.get("external_id")
        for field, value in (("name", name), ("external_id", external_id)):
            if not isinstance(value, str) or not value:
                raise ApiError(400, "missing_parameter", f"body field '{field}' is required (string)")
        if _generated_external(external_id, ds.n) is not None or external_id in svc.external_ids:
            raise ApiError(
                409, "user_exists_with_external_id", f"a user with external_id {external_id!r} already exists"
            )
        now = iso(time.time())
        uid = ds.codec.make(ids.CREATED_USER, len(svc.created_users))
        record = {"id": uid, "name": name, "external_id": external_id, "created_at": now, "updated_at": now}
        svc.created_users[uid] = record
        svc.external_ids[external_id] = uid
        return record

    @app.post("/v1/sdk-tokens", status_code=201)
    def sdk_token(body: dict = Body(...)):  # noqa: B008
        if not body.get("user_id"):
            raise ApiError(400, "missing_parameter", "body field 'user_id' is required")
        user_by_id(body["user_id"])
        return {
            "sdk_token": "sdk-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "expires_at": iso(time.time() + 7 * 86_400),
        }

    @app.get("/v1/accounts")
    def accounts(request: Request):
        offset, limit = paging(request)
        cands = svc.account_candidates(request.query_params)
        rows = [render.account(int(a)) for a in cands[offset : offset + limit]]
        return encoded(envelope(rows, offset, limit))

    @app.get("/v1/accounts/{account_id}")
    def account(account_id: str):
        return render.account(svc.account_or_404(account_id))

    @app.patch("/v1/accounts/{account_id}")
    def update_account(account_id: str, body: dict = Body(...)):  # noqa: B008
        a = svc.account_or_404(account_id)
        monitoring = ds.account_overrides.setdefault(a, {}).setdefault("monitoring", {})
        for product, spec in (body.get("data") or {}).items():
            if product not in ("identity", "engagement", "income") or not isinstance(spec, dict):
                raise ApiError(400, "invalid_parameter", f"unknown product {product!r} in data")
            if "monitoring_type" in spec:
                monitoring[product] = spec["monitoring_type"]
            if isinstance(spec.get("audience"), dict) and "monitoring_type" in spec["audience"]:
                monitoring[f"{product}.audience"] = spec["audience"]["monitoring_type"]
        return render.account(a)

    @app.post("/v1/accounts/{account_id}/disconnect")
    def disconnect(account_id: str):
        a = svc.account_or_404(account_id)
        ds.account_overrides.setdefault(a, {}).update(
            status="NOT_CONNECTED", status_at=int(max(time.time(), ds.now + 1))
        )
        return render.account(a)

    @app.get("/v1/profiles")
    def profiles(request: Request):
        offset, limit = paging(request)
        q = request.query_params
        if q.get("account_id"):
            svc.named_account(q["account_id"])
        cands = svc.account_candidates(q)
        if ds.hide_disconnected():
            cands = [a for a in cands if svc.shown(int(a))]
        rows = [render.profile(int(a)) for a in cands[offset : offset + limit]]
        return encoded(envelope(rows, offset, limit))

    @app.get("/v1/profiles/{profile_id}")
    def profile(profile_id: str):
        a = svc.index(ids.PROFILE, profile_id, ds.accounts)
        if a is None or not svc.shown(a):
            raise not_found("profile", profile_id)
        return render.profile(a)

    @app.post("/v1/profiles/refresh", status_code=202)
    def refresh_profile(body: dict = Body(...)):  # noqa: B008
        svc.named_account(body.get("account_id"))
        return {"account_id": body["account_id"], "status": "IN_PROGRESS"}

    @app.get("/v1/audience")
    def audience(request: Request):
        account_id = required(request, "account_id")
        a = svc.named_account(account_id)
        if not svc.shown(a):
            raise not_found("audience", account_id)
        return render.audience(a)


def _generated_external(external_id: str, n: int) -> int | None:
    if external_id.startswith("cs-") and external_id[3:].isdigit():
        c = int(external_id[3:])
        return c if c < n and external_id == f"cs-{c:07d}" else None
    return None
