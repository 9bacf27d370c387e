"""Insider One Web Push hook: single push campaigns (30 requests/min)."""

from __future__ import annotations

import contextlib

from creator_sync.hooks.base import VendorHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import CreatorSyncConfigError, VendorBadRequestError, WebPushTitleExistsError
from creator_sync.http.limiter import build_limiter
from creator_sync.limits import INSIDER_WEB_PUSH_POOL

DEFAULT_HOST = "https://web-push.api.useinsider.com"
SINGLE_PATH = "/v1/single"
MAX_TITLE = 100


class InsiderWebPushHook(VendorHook):
    """Web Push API (Bearer = connection password; partner id = connection login)."""

    conn_name_attr = "insider_web_push_conn_id"
    default_conn_name = "insider_web_push_default"
    conn_type = "insider_web_push"
    hook_name = "Insider One Web Push"
    vendor = "Insider Web Push"
    pool = INSIDER_WEB_PUSH_POOL

    @property
    def insider_web_push_conn_id(self) -> str:
        return self.conn_id

    def _build_client(self, conn) -> VendorClient:
        if not conn.login:
            raise CreatorSyncConfigError(f"connection '{self.conn_id}' needs login = Insider partner id")
        self.partner_id = str(conn.login)
        return VendorClient(
            vendor=self.vendor,
            base_url=conn.host or DEFAULT_HOST,
            conn_id=self.conn_id,
            headers={"Authorization": f"Bearer {conn.password or ''}"},
            secrets=[conn.password],
            limiters=self._limiters or {INSIDER_WEB_PUSH_POOL: build_limiter(INSIDER_WEB_PUSH_POOL)},
            **self._client_kwargs(),
        )

    def _probe(self) -> str:
        # No read endpoint exists: an incomplete create (no title) is rejected after authentication.
        client = self.client
        with contextlib.suppress(VendorBadRequestError):
            client.post(SINGLE_PATH, {"partner_id": self.partner_id}, idempotent=False)
        return f"Connected to Insider Web Push at {client.base_url} (credentials accepted)"

    def create_single_push(self, title: str, language: str, is_all: bool = False) -> int:
        """Create a Single Push campaign (Draft) and return its campaign id."""
        if not title or len(title) > MAX_TITLE:
            raise CreatorSyncConfigError(f"title must be 1..{MAX_TITLE} characters, got {len(title or '')}")
        if not language:
            raise CreatorSyncConfigError("language is required (e.g. en_US, or all_ALL)")
        client = self.client
        body = {"partner_id": self.partner_id, "title": title, "language": language, "is_all": bool(is_all)}
        try:
            data = client.post(SINGLE_PATH, body, idempotent=False)
        except VendorBadRequestError as exc:
            if exc.status != 400:
                raise
            raise WebPushTitleExistsError(
                f"{exc}. Insider rejects a create with HTTP 400 when a campaign titled {title!r} already "
                "exists: choose a new title (retrying will not help)",
                vendor=exc.vendor,
                method=exc.method,
                path=exc.path,
                status=exc.status,
                vendor_message=exc.vendor_message,
                conn_id=exc.conn_id,
            ) from None
        campaign_id = data.get("campaign_id") if isinstance(data, dict) else None
        if campaign_id is None:
            from creator_sync.http.errors import VendorResponseError

            raise VendorResponseError(
                f"{self.vendor} POST {SINGLE_PATH}: response has no campaign_id",
                vendor=self.vendor,
                method="POST",
                path=SINGLE_PATH,
                conn_id=self.conn_id,
            )
        return int(campaign_id)
