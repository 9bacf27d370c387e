"""Contact identifiers: pick from InsightIQ's JSON lists, normalise email and phone (E.164)."""

from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd
import phonenumbers

EMAIL_RE = r"^.+@.+\..+$"  # Insider's documented identifier rule
E164_RE = r"^\+[1-9]\d{6,14}$"  # Insider's documented phone_number rule


def first_value(raw: object, key: str) -> str | None:
    """First non-empty `key` of a JSON list like `[{"type": ..., "email_id": ...}]` (or an actual list)."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None
    items = raw
    if isinstance(raw, str):
        try:
            items = json.loads(raw)
        except ValueError:
            return raw.strip() or None  # a bare value instead of the documented list
    if isinstance(items, dict):
        items = [items]
    for item in items if isinstance(items, list) else []:
        value = item.get(key) if isinstance(item, dict) else item
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def pick(series: pd.Series, key: str) -> pd.Series:
    return series.map(lambda raw: first_value(raw, key)).astype("str")


def normalise_email(emails: pd.Series) -> pd.Series:
    return emails.str.strip().str.lower()


@lru_cache(maxsize=65536)
def to_e164(raw: str, region: str | None) -> str | None:
    """`raw` (international or national format) -> E.164, or None if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: pd.Series, region: pd.Series) -> pd.Series:
    """E.164 where possible, else the raw value (validation then rejects it as non_e164_phone)."""
    out = [
        (to_e164(r, g if isinstance(g, str) else None) or r) if isinstance(r, str) else None
        for r, g in zip(raw.astype("object"), region.astype("object"), strict=True)
    ]
    return pd.Series(out, index=raw.index, dtype="str")


def is_email(values: pd.Series) -> pd.Series:
    return values.str.match(EMAIL_RE).fillna(False).astype(bool)


def is_e164(values: pd.Series) -> pd.Series:
    return values.str.match(E164_RE).fillna(False).astype(bool)
