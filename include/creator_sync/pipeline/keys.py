"""Stable keys: the acknowledged-event key and the per-user attribute hash (what the ledger remembers)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attribute_hash(user: dict) -> str:
    """sha256 of the user's identifiers + attributes (events excluded)."""
    payload = {"identifiers": user.get("identifiers") or {}, "attributes": user.get("attributes") or {}}
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def user_key(user: dict) -> str:
    ids = user.get("identifiers") or {}
    return str(ids.get("uuid") or ids.get("email") or ids.get("phone_number") or user.get("insider_id") or "")


def event_instant(value: object) -> datetime | None:
    """An RFC 3339 timestamp (``Z`` or ``z``, fractions, offsets) as an aware UTC datetime; None if it is not
    one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def canonical_timestamp(value: object) -> object:
    """One spelling per instant: ``YYYY-MM-DDTHH:MM:SSZ``, with fractions only when the instant has them
    (``.123Z``). The transform writes whole-second ``Z`` timestamps, which stay as they are; anything that is
    not a timestamp is returned unchanged (validation rejects it elsewhere)."""
    instant = event_instant(value)
    if instant is None:
        return value
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond:06d}".rstrip("0")
    return text + "Z"


def key_value(value: object) -> object:
    """A key param's value as the ledger and the Profile API check compare it: strings as they are, other
    values as their JSON text (content id 123 and "123" are one item)."""
    return value if value is None or isinstance(value, str) else canonical(value)


def event_key(uuid: str, event: dict, key_params: tuple[str, ...] | None) -> str:
    """sha256(uuid, event_name, timestamp instant, stable params). `key_params` names the params (top-level
    or custom) that identify the item, compared as ``key_value``; without them all params are used."""
    params = event.get("event_params") or {}
    if key_params:
        custom = params.get("custom") or {}
        params = {k: key_value(params.get(k, custom.get(k))) for k in key_params}
    raw = canonical([uuid, event.get("event_name"), canonical_timestamp(event.get("timestamp")), params])
    return hashlib.sha256(raw.encode()).hexdigest()
