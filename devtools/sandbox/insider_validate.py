"""Insider Upsert validation with the documented error keys/messages (including the doc's typo)."""

from __future__ import annotations

import re
from datetime import datetime

EMAIL_RE = re.compile(r"^.+@.+\..+$")
PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL_KEY = r"identifiers.*.regexp(^.+@.+\..+$)"
PHONE_KEY = r"identifiers.*.regexp(^\+[1-9]\d{6,14}$)"
EITHER = "either insider_id or idenifiers must be specified"
DEFAULT_IDENTIFIERS = {
    "email": "email",
    "em": "email",
    "phone_number": "phone_number",
    "pn": "phone_number",
    "uuid": "uuid",
}
REQUIRED_PARAMS = {
    "purchase": ("event_group_id", "unit_sale_price", "currency", "quantity"),
    "cart_page_view": ("event_group_id", "unit_sale_price", "currency"),
}
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(value) -> datetime | None:
    if not isinstance(value, str) or not RFC3339_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def validate_identifiers(prefix: str, identifiers, insider_id, errors: dict[str, list[str]]) -> None:
    def add(key: str, message: str) -> None:
        messages = errors.setdefault(f"{prefix}.{key}", [])
        if message not in messages:
            messages.append(message)

    if not identifiers and not insider_id:
        add("identifiers.required", EITHER)
        add("insider_id.required", EITHER)
        return
    if identifiers is None:
        return
    if not isinstance(identifiers, dict):
        add("identifiers.type(object)", "identifiers must be an object")
        return
    for key, value in identifiers.items():
        if key == "custom":
            if not isinstance(value, dict):
                add("identifiers.custom.type(object)", "custom identifiers must be an object")
            continue
        kind = DEFAULT_IDENTIFIERS.get(key)
        if kind is None:
            add("identifiers.*.in(defaults_column)", "key must be one of phone_number(pn), email(em) or uuid")
        elif not isinstance(value, str):
            add("identifiers.*.type(string)", f"{kind} must be string: {value}")
        elif kind == "email" and not EMAIL_RE.match(value):
            add(EMAIL_KEY, f"not a valid email address: {value}")
        elif kind == "phone_number" and not PHONE_RE.match(value):
            add(PHONE_KEY, f"user has an invalid phone number: {value}")


def validate_user(n: int, user, errors: dict[str, list[str]]) -> None:
    """Append this user's errors to ``errors`` (keys ``users.N....``)."""
    prefix = f"users.{n}"
    if not isinstance(user, dict):
        errors[f"{prefix}.type(object)"] = ["user must be an object"]
        return
    validate_identifiers(prefix, user.get("identifiers"), user.get("insider_id"), errors)
    attributes = user.get("attributes") or {}
    if not isinstance(attributes, dict):
        errors[f"{prefix}.attributes.type(object)"] = ["attributes must be an object"]
        attributes = {}
    if "email" in attributes and not (
        isinstance(attributes["email"], str) and EMAIL_RE.match(attributes["email"])
    ):
        errors.setdefault(f"{prefix}.attributes.email.regexp(^.+@.+\\..+$)", []).append(
            f"not a valid email address: {attributes['email']}"
        )
    phone = attributes.get("phone_number")
    if phone is not None and not (isinstance(phone, str) and PHONE_RE.match(phone)):
        errors.setdefault(f"{prefix}.attributes.phone_number.regexp(^\\+[1-9]\\d{{6,14}}$)", []).append(
            f"user has an invalid phone number: {phone}"
        )
    if "birthday" in attributes and parse_rfc3339(attributes["birthday"]) is None:
        errors[f"{prefix}.attributes.birthday.date_format(RFC3339)"] = [
            f"birthday must be an RFC 3339 date-time: {attributes['birthday']}"
        ]
    events = user.get("events") or []
    if not isinstance(events, list):
        errors[f"{prefix}.events.type(array)"] = ["events must be an array"]
        return
    for m, event in enumerate(events):
        validate_event(f"{prefix}.events.{m}", event, errors)


def validate_event(prefix: str, event, errors: dict[str, list[str]]) -> None:
    if not isinstance(event, dict):
        errors[f"{prefix}.type(object)"] = ["event must be an object"]
        return
    name = event.get("event_name")
    if not isinstance(name, str) or not name:
        errors[f"{prefix}.event_name.required"] = ["event_name is required"]
    if "timestamp" not in event:
        errors[f"{prefix}.timestamp.required"] = ["timestamp is required"]
    elif parse_rfc3339(event["timestamp"]) is None:
        errors[f"{prefix}.timestamp.date_format(RFC3339)"] = [
            f"timestamp must be an RFC 3339 date-time: {event['timestamp']}"
        ]
    params = event.get("event_params") or {}
    if not isinstance(params, dict):
        errors[f"{prefix}.event_params.type(object)"] = ["event_params must be an object"]
        return
    missing = [p for p in REQUIRED_PARAMS.get(name, ()) if params.get(p) in (None, "")]
    if missing:
        errors[f"{prefix}.event_params.*.required"] = [
            f"{p} parameter is required on {name} event" for p in missing
        ]
