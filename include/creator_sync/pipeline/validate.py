"""Insider's documented rules, checked column-wise before anything is sent.

Every check returns a reason code per row (missing = valid). Reason codes are stable strings: dashboards,
dead-letter replays and the run report key on them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creator_sync.pipeline.identity import is_e164, is_email

# Reason codes (stable).
from creator_sync.reasons import (  # noqa: F401 - the stable codes, re-exported for the pipeline
    CART_PAGE_VIEW_MISSING_PARAMS,
    INVALID_EVENT_TIMESTAMP,
    INVALID_INCOME_ITEM,
    INVALID_UUID,
    MALFORMED_EMAIL,
    MALFORMED_SOURCE_RECORD,
    MISSING_IDENTIFIER,
    NO_USABLE_IDENTIFIER,
    NON_E164_PHONE,
    PURCHASE_MISSING_PARAMS,
    REASONS,
    UNIFICATION_ERROR,
    USER_TOO_LARGE,
    VENDOR_REJECTED,
)

RFC3339_RE = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
# Event params Insider requires per event name (insider-upsert-user-data.md, the event parameter table:
# event_group_id, currency and unit_sale_price "Yes only when the event_name is purchase or cart_page_view",
# quantity "Yes, only when the event_name is purchase"), and the reason code of an event missing one.
PURCHASE_REQUIRED = ("event_group_id", "currency", "quantity", "unit_sale_price")
CART_PAGE_VIEW_REQUIRED = ("event_group_id", "currency", "unit_sale_price")
REQUIRED_EVENT_PARAMS: dict[str, tuple[tuple[str, ...], str]] = {
    "purchase": (PURCHASE_REQUIRED, PURCHASE_MISSING_PARAMS),
    "cart_page_view": (CART_PAGE_VIEW_REQUIRED, CART_PAGE_VIEW_MISSING_PARAMS),
}


def first_reason(checks: list[tuple[pd.Series, str]], index: pd.Index) -> pd.Series:
    """The first failing check per row (checks in priority order); NA where all pass."""
    if not checks:
        return pd.Series(pd.NA, index=index, dtype="str")
    conditions = [np.asarray(c.reindex(index, fill_value=False), dtype=bool) for c, _ in checks]
    chosen = np.select(conditions, [r for _, r in checks], default="")
    return pd.Series(chosen, index=index, dtype="str").replace("", pd.NA)


# the longest user key the state store keeps (its user_key columns, creator_sync.store.schema)
USER_KEY_MAX = 255


def usable_uuid(value: object) -> bool:
    """A uuid the state store can key a user by: a non-empty string of at most USER_KEY_MAX characters
    without a NUL (PostgreSQL refuses a longer key, and a NUL, in the claim of the whole batch; SQLite's key
    look-up would read a NUL as the end of the key, creator_sync.store.engine.key_values)."""
    return isinstance(value, str) and 0 < len(value) <= USER_KEY_MAX and "\x00" not in value


def identifier_reasons(frame: pd.DataFrame, *, require_contact: bool) -> pd.Series:
    """`frame` has columns uuid (any type), email, phone_number (already normalised) and optionally
    `other_identifier` (bool: e.g. a custom identifier is present)."""
    uuid = frame["uuid"]
    uuid_present = uuid.notna()
    uuid_is_str = uuid.map(usable_uuid).astype(bool)
    email = frame["email"].astype("str")
    phone = frame["phone_number"].astype("str")
    email_ok, phone_ok = is_email(email), is_e164(phone)
    other = frame["other_identifier"] if "other_identifier" in frame else pd.Series(False, index=frame.index)
    checks = [
        (~uuid_present & email.isna() & phone.isna() & ~other.astype(bool), MISSING_IDENTIFIER),
        (uuid_present & ~uuid_is_str, INVALID_UUID),
        (email.notna() & ~email_ok, MALFORMED_EMAIL),
        (phone.notna() & ~phone_ok, NON_E164_PHONE),
    ]
    if require_contact:
        checks.append((~email_ok & ~phone_ok, NO_USABLE_IDENTIFIER))
    return first_reason(checks, frame.index)


def event_reasons(event_name: pd.Series, timestamp: pd.Series, params: pd.DataFrame) -> pd.Series:
    """Per event: RFC 3339 timestamp, and the required params of purchase / cart_page_view events
    (``REQUIRED_EVENT_PARAMS``; `params` = one column each)."""
    ts = timestamp.astype("str")
    bad_ts = ~ts.str.match(RFC3339_RE).fillna(False).astype(bool)
    checks: list[tuple[pd.Series, str]] = [(bad_ts, INVALID_EVENT_TIMESTAMP)]
    for name, (required, reason) in REQUIRED_EVENT_PARAMS.items():
        is_event = (event_name == name).fillna(False).astype(bool)
        if not is_event.any():
            continue
        missing = pd.Series(False, index=event_name.index)
        for param in required:
            missing |= params[param].isna() if param in params else True
        checks.append((is_event & missing, reason))
    return first_reason(checks, event_name.index)


def size_reasons(line_bytes: pd.Series, max_bytes: int) -> pd.Series:
    return first_reason([(line_bytes > max_bytes, USER_TOO_LARGE)], line_bytes.index)
