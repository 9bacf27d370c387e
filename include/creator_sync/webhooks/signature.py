"""InsightIQ webhook signatures, under either reading of the sources (insightiq-webhook-events.md,
"Signature verification: inconsistent between sources"): the official Phyllo sample reads
``Phyllo-Signature``, third-party InsightIQ notes read ``Webhook-Signatures``; the reference says to accept
both. A header holds one or more comma-separated hex HMAC-SHA256 digests of the raw request body, keyed with
the InsightIQ client secret (several while a secret is being rotated). A delivery is authentic when ANY
entry of ANY of the header names matches."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

# Every header name a delivery may be signed under; the first is the one the sandbox signs under by default.
SIGNATURE_HEADERS = ("Webhook-Signatures", "Phyllo-Signature")


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of ``body`` keyed with ``secret`` (what InsightIQ puts in the header)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_header(header: str | None) -> list[str]:
    """The non-empty, lower-cased entries of one signature header."""
    if not header:
        return []
    return [part.strip().lower() for part in header.split(",") if part.strip()]


def signatures(headers: Mapping[str, str]) -> list[str]:
    """The entries of every signature header name present in ``headers`` (a case-insensitive mapping such
    as Starlette's or httpx's ``Headers``)."""
    entries: list[str] = []
    for name in SIGNATURE_HEADERS:
        entries += parse_header(headers.get(name))
    return entries


def is_valid(body: bytes, header: str | Iterable[str] | None, secrets: list[str]) -> bool:
    """True when any entry (of a header value, or an iterable of entries) equals the HMAC of ``body`` under
    any of ``secrets``.

    Every comparison uses ``hmac.compare_digest`` and every pair is compared (no early exit on the first
    mismatch), so the time taken does not tell an attacker which entry came close.
    """
    entries = parse_header(header) if header is None or isinstance(header, str) else list(header)
    expected = [sign(body, secret) for secret in secrets if secret]
    matched = False
    for entry in entries:
        for digest in expected:
            matched |= hmac.compare_digest(entry.encode(), digest.encode())
    return matched


def verify(body: bytes, headers: Mapping[str, str], secrets: list[str]) -> bool:
    """The one verifier: True when an entry of any signature header is the HMAC of ``body`` under a secret."""
    return is_valid(body, signatures(headers), secrets)
