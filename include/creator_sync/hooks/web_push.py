"""Insider One Web Push hook: single push campaigns (30 requests/min).

The API has no read endpoint; titles are unique (a create with an existing title is refused with 400). So
after a create whose answer was lost, the hook sends the same create once more: 201 means the first never
arrived, 400 "title exists" means a campaign with this title exists (almost surely the lost attempt's), and no
second campaign can come of it.

The docs name one 400 (an existing title), but a 400 may carry another reason (a missing field, a title over
100 characters, a bad language). The hook reads the 400 body (``bad_request_reason``): a message that names
another reason is a ``VendorBadRequestError`` with Insider's message (fix the request); a message that says
the title exists, or says nothing more than "bad request", is the documented ``WebPushTitleExistsError``.
"""

from __future__ import annotations

import contextlib

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.base import MAY_HAVE_BEEN_PROCESSED, VendorHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import VendorBadRequestError, VendorResponseError
from creator_sync.http.limiter import build_limiter
from creator_sync.limits import INSIDER_WEB_PUSH_POOL
from creator_sync.vendor_rules import WEB_PUSH_MAX_TITLE

DEFAULT_HOST = "https://web-push.api.useinsider.com"
SINGLE_PATH = "/v1/single"
MAX_TITLE = WEB_PUSH_MAX_TITLE


# Words of a 400 message that say the title is taken, and words that name another reason (a field of the
# body, a format or length rule). A message with neither is the documented reading: the title exists.
TITLE_TAKEN_WORDS = ("exist", "already", "duplicate", "taken", "in use", "unique")
OTHER_REASON_WORDS = (
    "partner_id",
    "language",
    "is_all",
    "required",
    "characters",
    "long",
    "invalid",
    "must",
    "json",
)
TITLE_EXISTS, INVALID_REQUEST = "title_exists", "invalid_request"


def bad_request_reason(message: str | None) -> str:
    """What a Web Push 400 says: ``TITLE_EXISTS`` or ``INVALID_REQUEST`` (see the module docstring)."""
    text = (message or "").lower()
    if any(word in text for word in TITLE_TAKEN_WORDS):
        return TITLE_EXISTS
    if any(word in text for word in OTHER_REASON_WORDS):
        return INVALID_REQUEST
    return TITLE_EXISTS


class WebPushTitleExistsError(VendorBadRequestError):
    """Insider Web Push answered 400 to a create: a campaign with this title already exists."""


class WebPushCreateUnconfirmedError(WebPushTitleExistsError):
    """A create's answer was lost and the re-sent create found the title taken: the campaign exists (most
    likely from the lost attempt) but its id is unknown."""


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
        """Create a Single Push campaign (Draft) and return its campaign id.

        Raises ``WebPushTitleExistsError`` when the title is taken, ``WebPushCreateUnconfirmedError`` when
        the answer of the create was lost and the title is taken now (see the module docstring).
        """
        if not title or len(title) > MAX_TITLE:
            raise CreatorSyncConfigError(f"title must be 1..{MAX_TITLE} characters, got {len(title or '')}")
        if not language:
            raise CreatorSyncConfigError("language is required (e.g. en_US, or all_ALL)")
        self.get_conn()  # building the client reads the partner id from the connection
        body = {"partner_id": self.partner_id, "title": title, "language": language, "is_all": bool(is_all)}
        try:
            return self._create(body)
        except MAY_HAVE_BEEN_PROCESSED as lost:
            self.log.warning("Web push create %r: %s; re-sending it to learn whether it arrived", title, lost)
            try:
                return self._create(body)
            except WebPushTitleExistsError as exc:
                raise exc.recast(
                    WebPushCreateUnconfirmedError,
                    f"the answer to creating web push campaign {title!r} was lost ({lost}); re-sent, "
                    "Insider now says the title exists, so the campaign was created (most likely by the "
                    "lost attempt; its id is on the InOne Web Push listing, status Draft). Not retried",
                ) from None

    def _create(self, body: dict) -> int:
        try:
            data = self.client.post(SINGLE_PATH, body, idempotent=False)
        except VendorBadRequestError as exc:
            if exc.status != 400:
                raise
            if bad_request_reason(exc.vendor_message) == INVALID_REQUEST:
                raise exc.recast(
                    VendorBadRequestError,
                    f"{exc}. Insider refused the campaign for this reason (not an existing title): fix the "
                    "request (retrying will not help)",
                ) from None
            raise exc.recast(
                WebPushTitleExistsError,
                f"{exc}. Insider rejects a create with HTTP 400 when a campaign titled {body['title']!r} "
                "already exists: choose a new title (retrying will not help)",
            ) from None
        campaign_id = data.get("campaign_id") if isinstance(data, dict) else None
        if campaign_id is None:
            raise VendorResponseError(
                f"{self.vendor} POST {SINGLE_PATH}: response has no campaign_id",
                vendor=self.vendor,
                method="POST",
                path=SINGLE_PATH,
                conn_id=self.conn_id,
            )
        return int(campaign_id)
