"""Personal data in the view's dead-letter previews, masked for viewers who may not edit the DAG.

What is masked: every value under a key naming an email or a phone number (anywhere in the payload), and
email addresses or phone numbers written into free text (the user key of a user without a uuid, a
validation detail). ``ada@example.com`` -> ``a***@***``, ``+44 20 7946 0958`` -> ``***58``.
"""

from __future__ import annotations

import re
from typing import Any

_PII_KEY = re.compile(r"e-?mail|phone|msisdn", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s\"'<>@,;:()\[\]{}]+@[^\s\"'<>@,;()\[\]{}]+")
_PHONE = re.compile(r"\+\d[\d\s().-]{4,}\d|\(\d{2,4}\)\s?\d{3}[\s-]?\d{4}")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask_email(value: str) -> str:
    return f"{value[:1]}***@***" if value else value


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) > 4 else "***"


def _mask_phone_match(match: re.Match) -> str:
    text = match.group(0)
    return text if _DATE_LIKE.search(text) else mask_phone(text)


def mask_text(text: str) -> str:
    """Email addresses and phone numbers inside free text, masked (dates and plain ids stay)."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(_mask_phone_match, text)


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return mask_payload(value)
    if value is None or isinstance(value, bool):
        return value
    if "mail" in key.lower():
        return mask_email(str(value))
    return mask_phone(str(value))


def mask_payload(value: Any) -> Any:
    """A copy of a JSON value with email / phone fields masked and free-text strings passed through
    mask_text."""
    if isinstance(value, dict):
        return {
            k: _mask_value(str(k), v) if _PII_KEY.search(str(k)) else mask_payload(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_payload(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
