"""InsightIQ hook. ``RESOURCES`` is the one description of the list endpoints (path, date filters, whether
an account is required, refresh/fetch-historic/search): read them with ``iter_records`` / ``get_record``.
Methods exist only for the calls that are not a table row: users by external id, SDK tokens, audience and
webhook registration.

Creates are not idempotent at InsightIQ. After a create whose answer may have been lost, the hook looks
the object up (user by external id, webhook by URL) before anything creates it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from creator_sync import vendor_ids
from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.base import MAY_HAVE_BEEN_PROCESSED, VendorHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import VendorError, VendorNotFoundError
from creator_sync.http.limiter import build_limiter
from creator_sync.http.paging import DEFAULT_PAGE_LIMIT, iter_offset
from creator_sync.limits import INSIGHTIQ_POOL

HOSTS = {"sandbox": "https://api.sandbox.insightiq.ai", "production": "https://api.insightiq.ai"}

DateLike = dt.date | dt.datetime | str


@dataclass(frozen=True)
class ListResource:
    """A limit/offset list endpoint of InsightIQ."""

    path: str
    from_param: str | None = None
    to_param: str | None = None
    account_required: bool = False
    sync_ops: bool = False  # has POST {path}/refresh, /fetch-historic and /search


# resource name -> list endpoint (insightiq-api.md)
RESOURCES: dict[str, ListResource] = {
    "work_platforms": ListResource("/v1/work-platforms"),
    "users": ListResource("/v1/users"),
    "accounts": ListResource("/v1/accounts"),
    "profiles": ListResource("/v1/profiles"),
    "contents": ListResource("/v1/social/contents", "from_date", "to_date", sync_ops=True),
    "content_groups": ListResource("/v1/social/content-groups", "from_date", "to_date", sync_ops=True),
    "comments": ListResource("/v1/social/comments", "from_date", "to_date", account_required=True),
    "social_transactions": ListResource(
        "/v1/social/income/transactions",
        "transaction_from_date",
        "transaction_to_date",
        account_required=True,
        sync_ops=True,
    ),
    "social_payouts": ListResource(
        "/v1/social/income/payouts",
        "payout_from_date",
        "payout_to_date",
        account_required=True,
        sync_ops=True,
    ),
    "commerce_transactions": ListResource(
        "/v1/commerce/income/transactions",
        "transaction_from_date",
        "transaction_to_date",
        account_required=True,
        sync_ops=True,
    ),
    "commerce_payouts": ListResource(
        "/v1/commerce/income/payouts",
        "payout_from_date",
        "payout_to_date",
        account_required=True,
        sync_ops=True,
    ),
    "commerce_balances": ListResource(
        "/v1/commerce/income/balances",
        "balance_from_date",
        "balance_to_date",
        account_required=True,
        sync_ops=True,
    ),
    "webhooks": ListResource("/v1/webhooks"),
}


def format_date(value: DateLike | None) -> str | None:
    """``YYYY-MM-DD`` for dates/datetimes; strings pass through (already rendered templates)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _resource(name: str) -> ListResource:
    try:
        return RESOURCES[name]
    except KeyError:
        raise CreatorSyncConfigError(
            f"unknown InsightIQ resource {name!r}; known: {', '.join(sorted(RESOURCES))}"
        ) from None


class InsightIQHook(VendorHook):
    """InsightIQ API (Basic auth: connection login = client id, password = client secret)."""

    conn_name_attr = "insightiq_conn_id"
    default_conn_name = "insightiq_default"
    conn_type = "insightiq"
    hook_name = "InsightIQ"
    vendor = "InsightIQ"
    pool = INSIGHTIQ_POOL

    @property
    def insightiq_conn_id(self) -> str:
        return self.conn_id

    def _build_client(self, conn) -> VendorClient:
        extra = conn.extra_dejson or {}
        environment = str(extra.get("environment") or "sandbox").lower()
        if not conn.host and environment not in HOSTS:
            raise CreatorSyncConfigError(
                f"connection '{self.conn_id}': extra.environment must be one of {sorted(HOSTS)}, "
                f"got {environment!r}"
            )
        base_url = conn.host or HOSTS[environment]
        return VendorClient(
            vendor=self.vendor,
            base_url=base_url,
            conn_id=self.conn_id,
            auth=httpx.BasicAuth(conn.login or "", conn.password or ""),
            secrets=[conn.password],
            limiters=self._limiters or {INSIGHTIQ_POOL: build_limiter(INSIGHTIQ_POOL)},
            **self._client_kwargs(),
        )

    def _probe(self) -> str:
        self.client.get("/v1/work-platforms", params={"limit": 1, "offset": 0})
        return f"Connected to InsightIQ at {self.client.base_url}"

    # -- generic lists --------------------------------------------------------------------------------

    def iter_records(
        self,
        resource: str,
        *,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        start_offset: int = 0,
        max_pages: int | None = None,
        page_stride: int = 1,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every record of list ``resource`` (see ``RESOURCES``), paged with limit/offset.

        ``start_offset``/``max_pages`` select a block of pages; ``page_stride`` n reads every n-th page, so
        n tasks starting at pages 0..n-1 share one list (the creator_sync account shards do).
        """
        spec = _resource(resource)
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        if spec.account_required and not params.get("account_id"):
            raise CreatorSyncConfigError(f"InsightIQ resource {resource!r} requires account_id")
        if from_date is not None or to_date is not None:
            if spec.from_param is None:
                raise CreatorSyncConfigError(f"InsightIQ resource {resource!r} has no date filter")
            params[spec.from_param] = format_date(from_date)
            params[spec.to_param] = format_date(to_date)
        return iter_offset(
            self.client,
            spec.path,
            params,
            limit=page_limit,
            offset=start_offset,
            max_pages=max_pages,
            page_stride=page_stride,
        )

    def get_record(self, resource: str, record_id: str) -> dict[str, Any]:
        return self.client.get(f"{_resource(resource).path}/{vendor_ids.record_id(record_id, resource)}")

    def _sync_resource(self, resource: str) -> ListResource:
        spec = _resource(resource)
        if not spec.sync_ops:
            raise CreatorSyncConfigError(
                f"InsightIQ resource {resource!r} has no refresh/fetch-historic/search"
            )
        return spec

    def refresh(self, resource: str, account_id: str) -> dict[str, Any]:
        return self.client.post(f"{self._sync_resource(resource).path}/refresh", {"account_id": account_id})

    def fetch_historic(self, resource: str, account_id: str, from_date: DateLike) -> dict[str, Any]:
        body = {"account_id": account_id, "from_date": format_date(from_date)}
        return self.client.post(f"{self._sync_resource(resource).path}/fetch-historic", body)

    def search(self, resource: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        body = self.client.post(f"{self._sync_resource(resource).path}/search", {"ids": list(ids)})
        return body.get("data", body) if isinstance(body, dict) else body

    # -- users / sdk tokens ------------------------------------------------------------------------------

    def get_user_by_external_id(self, external_id: str) -> dict[str, Any]:
        return self.client.get(f"/v1/users/external_id/{vendor_ids.external_id(external_id)}")

    def find_user(self, external_id: str) -> dict[str, Any] | None:
        """The user with ``external_id``, or None when InsightIQ has none."""
        try:
            return self.get_user_by_external_id(external_id)
        except VendorNotFoundError:
            return None

    def create_user(self, name: str, external_id: str) -> dict[str, Any]:
        """Create a user; after a lost answer the user found by ``external_id`` is returned instead."""
        try:
            return self.client.post("/v1/users", {"name": name, "external_id": external_id}, idempotent=False)
        except MAY_HAVE_BEEN_PROCESSED:
            found = self.find_user(external_id)
            if found is None:
                raise
            self.log.warning("InsightIQ user %s: the create's answer was lost; it exists", external_id)
            return found

    def ensure_user(self, name: str, external_id: str) -> tuple[dict[str, Any], bool]:
        """The user with ``external_id``, created when missing; ``(user, created)``."""
        found = self.find_user(external_id)
        if found is not None:
            return found, False
        try:
            return self.create_user(name, external_id), True
        except VendorError as exc:
            if exc.status != 409:  # 409: created meanwhile (a race with another run)
                raise
            return self.get_user_by_external_id(external_id), False

    def create_sdk_token(self, user_id: str, products: Sequence[str]) -> dict[str, Any]:
        """Issue a new SDK token (each call issues another one: never re-sent after a lost answer)."""
        body = {"user_id": user_id, "products": list(products)}
        return self.client.post("/v1/sdk-tokens", body, idempotent=False)

    def get_audience(self, account_id: str) -> dict[str, Any]:
        return self.client.get("/v1/audience", params={"account_id": account_id})

    # -- webhooks ----------------------------------------------------------------------------------------

    def find_webhooks(self, url: str) -> list[dict[str, Any]]:
        """Registered webhooks delivering to ``url``."""
        return [w for w in self.iter_records("webhooks") if w.get("url") == url]

    def create_webhook(self, url: str, events: Sequence[str], **extra: Any) -> dict[str, Any]:
        """Register a webhook; after a lost answer the webhook found by ``url`` is returned instead."""
        body = {"url": url, "events": list(events), **extra}
        try:
            return self.client.post("/v1/webhooks", body, idempotent=False)
        except MAY_HAVE_BEEN_PROCESSED:
            found = self.find_webhooks(url)
            if not found:
                raise
            self.log.warning("InsightIQ webhook for %s: the create's answer was lost; it exists", url)
            return found[0]

    def update_webhook(
        self, webhook_id: str, url: str, events: Sequence[str], **extra: Any
    ) -> dict[str, Any]:
        body = {"url": url, "events": list(events), **extra}
        return self.client.request(
            "PUT", f"/v1/webhooks/{vendor_ids.record_id(webhook_id, 'webhook id')}", json_body=body
        ).data

    def send_mock_webhook(self, payload: Mapping[str, Any]) -> Any:
        """Ask InsightIQ to deliver a test notification to the registered webhooks."""
        return self.client.post("/v1/webhooks/send", {"payload": dict(payload)})
