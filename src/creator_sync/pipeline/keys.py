"""Stable keys: the acknowledged-event key and the per-user attribute hash (what the ledger remembers)."""

from __future__ import annotations

import hashlib
import json


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attribute_hash(user: dict) -> str:
    """sha256 of the user's identifiers + attributes (events excluded)."""
    payload = {"identifiers": user.get("identifiers") or {}, "attributes": user.get("attributes") or {}}
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def user_key(user: dict) -> str:
    ids = user.get("identifiers") or {}
    return str(ids.get("uuid") or ids.get("email") or ids.get("phone_number") or user.get("insider_id") or "")


def event_key(uuid: str, event: dict, key_params: tuple[str, ...] | None) -> str:
    """sha256(uuid, event_name, timestamp, stable params). `key_params` names the params (top-level or
    custom) that identify the item; without them all params are used."""
    params = event.get("event_params") or {}
    if key_params:
        custom = params.get("custom") or {}
        params = {k: params.get(k, custom.get(k)) for k in key_params}
    raw = canonical([uuid, event.get("event_name"), event.get("timestamp"), params])
    return hashlib.sha256(raw.encode()).hexdigest()
