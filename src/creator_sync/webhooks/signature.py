"""InsightIQ webhook signatures: ``Webhook-Signatures`` is a comma-separated list of hex HMAC-SHA256 digests
of the raw request body, keyed with the InsightIQ client secret. A delivery is authentic when ANY entry
matches (several entries appear while a secret is being rotated)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Webhook-Signatures"


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of ``body`` keyed with ``secret`` (what InsightIQ puts in the header)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_header(header: str | None) -> list[str]:
    """The non-empty, lower-cased entries of a ``Webhook-Signatures`` header."""
    if not header:
        return []
    return [part.strip().lower() for part in header.split(",") if part.strip()]


def is_valid(body: bytes, header: str | None, secrets: list[str]) -> bool:
    """True when any header entry equals the HMAC of ``body`` under any of ``secrets``.

    Every comparison uses ``hmac.compare_digest`` and every pair is compared (no early exit on the first
    mismatch), so the time taken does not tell an attacker which entry came close.
    """
    entries = parse_header(header)
    expected = [sign(body, secret) for secret in secrets if secret]
    matched = False
    for entry in entries:
        for digest in expected:
            matched |= hmac.compare_digest(entry.encode(), digest.encode())
    return matched
