"""InsightIQ hook: every endpoint group of insightiq-api.md; list endpoints described as data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from creator_sync.hooks.base import VendorHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import CreatorSyncConfigError
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
        return self.client.get(f"{_resource(resource).path}/{record_id}")

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

    # -- work platforms / users / sdk tokens -------------------------------------------------------------

    def list_work_platforms(self, *, name: str | None = None) -> Iterator[dict[str, Any]]:
        return self.iter_records("work_platforms", name=name)

    def get_work_platform(self, work_platform_id: str) -> dict[str, Any]:
        return self.get_record("work_platforms", work_platform_id)

    def list_users(self) -> Iterator[dict[str, Any]]:
        return self.iter_records("users")

    def get_user(self, user_id: str) -> dict[str, Any]:
        return self.get_record("users", user_id)

    def get_user_by_external_id(self, external_id: str) -> dict[str, Any]:
        return self.client.get(f"/v1/users/external_id/{external_id}")

    def create_user(self, name: str, external_id: str) -> dict[str, Any]:
        return self.client.post("/v1/users", {"name": name, "external_id": external_id}, idempotent=False)

    def create_sdk_token(self, user_id: str, products: Sequence[str]) -> dict[str, Any]:
        return self.client.post("/v1/sdk-tokens", {"user_id": user_id, "products": list(products)})

    # -- accounts / profiles / audience ------------------------------------------------------------------

    def list_accounts(
        self, *, user_id: str | None = None, work_platform_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        return self.iter_records("accounts", user_id=user_id, work_platform_id=work_platform_id)

    def get_account(self, account_id: str) -> dict[str, Any]:
        return self.get_record("accounts", account_id)

    def update_account(self, account_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.request("PATCH", f"/v1/accounts/{account_id}", json_body={"data": dict(data)}).data

    def disconnect_account(self, account_id: str) -> dict[str, Any]:
        return self.client.post(f"/v1/accounts/{account_id}/disconnect")

    def list_profiles(
        self,
        *,
        account_id: str | None = None,
        user_id: str | None = None,
        work_platform_id: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self.iter_records(
            "profiles", account_id=account_id, user_id=user_id, work_platform_id=work_platform_id
        )

    def get_profile(self, profile_id: str) -> dict[str, Any]:
        return self.get_record("profiles", profile_id)

    def refresh_profile(self, account_id: str) -> dict[str, Any]:
        return self.client.post("/v1/profiles/refresh", {"account_id": account_id})

    def get_audience(self, account_id: str) -> dict[str, Any]:
        return self.client.get("/v1/audience", params={"account_id": account_id})

    # -- engagement --------------------------------------------------------------------------------------

    def list_contents(
        self,
        *,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        account_id: str | None = None,
        filters: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self.iter_records(
            "contents", from_date=from_date, to_date=to_date, account_id=account_id, filters=filters
        )

    def get_content(self, content_id: str) -> dict[str, Any]:
        return self.get_record("contents", content_id)

    def list_content_groups(
        self,
        *,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        account_id: str | None = None,
        filters: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self.iter_records(
            "content_groups", from_date=from_date, to_date=to_date, account_id=account_id, filters=filters
        )

    def get_content_group(self, content_group_id: str) -> dict[str, Any]:
        return self.get_record("content_groups", content_group_id)

    def list_comments(
        self,
        account_id: str,
        *,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        filters: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self.iter_records(
            "comments", from_date=from_date, to_date=to_date, account_id=account_id, filters=filters
        )

    # -- income (social + commerce share one shape) -----------------------------------------------------

    def list_income(
        self,
        resource: str,
        account_id: str,
        *,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        type: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """``resource``: social_transactions, social_payouts, commerce_transactions/payouts/balances."""
        return self.iter_records(
            resource, from_date=from_date, to_date=to_date, account_id=account_id, type=type
        )

    def get_income(self, resource: str, record_id: str) -> dict[str, Any]:
        return self.get_record(resource, record_id)

    # -- webhooks ----------------------------------------------------------------------------------------

    def list_webhooks(self) -> Iterator[dict[str, Any]]:
        return self.iter_records("webhooks")

    def get_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self.get_record("webhooks", webhook_id)

    def create_webhook(self, url: str, events: Sequence[str], **extra: Any) -> dict[str, Any]:
        return self.client.post(
            "/v1/webhooks", {"url": url, "events": list(events), **extra}, idempotent=False
        )

    def update_webhook(
        self, webhook_id: str, url: str, events: Sequence[str], **extra: Any
    ) -> dict[str, Any]:
        body = {"url": url, "events": list(events), **extra}
        return self.client.request("PUT", f"/v1/webhooks/{webhook_id}", json_body=body).data

    def delete_webhook(self, webhook_id: str) -> Any:
        return self.client.request("DELETE", f"/v1/webhooks/{webhook_id}", expect_json=False).data

    def send_mock_webhook(self, payload: Mapping[str, Any]) -> Any:
        return self.client.post("/v1/webhooks/send", {"payload": dict(payload)})
