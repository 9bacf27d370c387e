"""Insider One's ``error_callback_endpoint``: the URL the sync puts in each Upsert request, and how the
receiver checks that a callback really comes from that URL.

Insider re-sends the payload we submitted when a user fails unification, unsigned. The URL therefore
carries a token (``?token=``): HMAC-SHA256 of a fixed label keyed with the Insider request token (the
``insider_default`` connection password), or ``CREATOR_SYNC_INSIDER_CALLBACK_TOKEN`` when set. Only
Insider - who receives the URL inside our HTTPS request - and we know it.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from creator_sync import settings

ERRORS_PATH = "/creator-sync/webhooks/insider-errors"
INSIGHTIQ_PATH = "/creator-sync/webhooks/insightiq"
PUBLIC_BASE_URL_ENV = "CREATOR_SYNC_PUBLIC_BASE_URL"
CALLBACK_TOKEN_ENV = "CREATOR_SYNC_INSIDER_CALLBACK_TOKEN"
_LABEL = b"creator-sync insider error callback v1"


def public_base_url() -> str | None:
    base = settings.current().public_base_url or ""
    return base.rstrip("/") or None


def insightiq_webhook_url() -> str | None:
    """``{CREATOR_SYNC_PUBLIC_BASE_URL}/creator-sync/webhooks/insightiq``; None when the env is unset."""
    base = public_base_url()
    return f"{base}{INSIGHTIQ_PATH}" if base else None


def derived_callback_token(insider_request_token: str) -> str:
    """The token derived from the Insider request token (used unless CREATOR_SYNC_INSIDER_CALLBACK_TOKEN
    is set); devtools.secrets_scan looks for it too."""
    return hmac.new(insider_request_token.encode(), _LABEL, hashlib.sha256).hexdigest()[:40]


def callback_token(insider_request_token: str | None) -> str | None:
    """The token the error-callback URL carries; None when there is nothing to derive it from."""
    if explicit := settings.current().insider_callback_token:
        return explicit.get_secret_value()
    if not insider_request_token:
        return None
    return derived_callback_token(insider_request_token)


def error_callback_endpoint(insider_request_token: str | None = None) -> str | None:
    """The Upsert API's ``error_callback_endpoint`` for this deployment, or None (leave the field out).

    None when ``CREATOR_SYNC_PUBLIC_BASE_URL`` is unset. Pass the Insider request token
    (``InsiderHook``'s connection password); without it (and without ``CREATOR_SYNC_INSIDER_CALLBACK_TOKEN``)
    the URL has no token and the receiver will refuse the callbacks, so None is returned instead.
    """
    base = public_base_url()
    if base is None:
        return None
    token = callback_token(insider_request_token)
    if token is None:
        return None
    return f"{base}{ERRORS_PATH}?token={quote(token)}"


def token_matches(given: str | None, insider_request_token: str | None) -> bool:
    expected = callback_token(insider_request_token)
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
