"""Manual operations: a Single Web Push campaign, and onboarding one creator at InsightIQ."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

PRODUCTS = ("IDENTITY", "IDENTITY.AUDIENCE", "ENGAGEMENT", "ENGAGEMENT.AUDIENCE", "INCOME")
LANGUAGE_PATTERN = r"^(?:[a-z]{2}_[A-Z]{2}|all_ALL)$"
MAX_TITLE = 100


class WebPushTitleExists(Exception):
    pass


def create_web_push(hook, title: str, language: str, is_all: bool) -> dict:
    """Create the campaign; an existing title raises ``WebPushTitleExists`` (the caller must not retry)."""
    from creator_sync.http.errors import WebPushTitleExistsError

    try:
        campaign_id = hook.create_single_push(title, language, is_all)
    except WebPushTitleExistsError as exc:
        raise WebPushTitleExists(
            f"A web push campaign titled {title!r} already exists at Insider One; trigger again with a new "
            f"title. Not retried. (vendor: {exc.vendor_message or exc})"
        ) from exc
    log.info(
        "Created Single Web Push campaign %s (%r, %s, is_all=%s) in Draft",
        campaign_id,
        title,
        language,
        is_all,
    )
    return {"campaign_id": campaign_id, "title": title, "language": language, "is_all": bool(is_all)}


def token_fingerprint(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _default_mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def find_or_create_user(hook, name: str, external_id: str) -> tuple[dict, bool]:
    """The InsightIQ user with ``external_id`` (created when missing); ``(user, created)``."""
    from creator_sync.http.errors import VendorError, VendorNotFoundError

    try:
        return hook.get_user_by_external_id(external_id), False
    except VendorNotFoundError:
        pass
    try:
        return hook.create_user(name, external_id), True
    except VendorError as exc:
        if exc.status != 409:  # 409: created meanwhile (a retry after a lost response, or a race)
            raise
        return hook.get_user_by_external_id(external_id), False


def onboard_creator(
    hook,
    name: str,
    external_id: str,
    products: Sequence[str],
    mask: Callable[[str], None] | None = None,
) -> dict:
    """Find or create the user, issue an SDK token. The token is masked in logs and NOT returned: the
    result (an XCom) holds the user id, the expiry and a fingerprint only."""
    unknown = sorted(set(products) - set(PRODUCTS))
    if unknown or not products:
        from creator_sync.http.errors import CreatorSyncConfigError

        raise CreatorSyncConfigError(f"products must be a non-empty subset of {PRODUCTS}; unknown: {unknown}")
    user, created = find_or_create_user(hook, name, external_id)
    issued = hook.create_sdk_token(user["id"], list(dict.fromkeys(products)))
    token = issued.get("sdk_token") or ""
    if token:
        (mask or _default_mask)(token)
    fingerprint = token_fingerprint(token) if token else None
    log.info(
        "InsightIQ user %s (%s, external_id %s): SDK token issued for %s, expires %s, fingerprint %s",
        user["id"],
        "created" if created else "existing",
        external_id,
        ",".join(products),
        issued.get("expires_at"),
        fingerprint,
    )
    return {
        "user_id": user["id"],
        "external_id": external_id,
        "created": created,
        "products": list(dict.fromkeys(products)),
        "expires_at": issued.get("expires_at"),
        "token_fingerprint": fingerprint,
    }
