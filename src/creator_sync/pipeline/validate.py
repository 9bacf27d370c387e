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
    INVALID_EVENT_TIMESTAMP,
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
PURCHASE_REQUIRED = ("event_group_id", "currency", "quantity", "unit_sale_price")


def first_reason(checks: list[tuple[pd.Series, str]], index: pd.Index) -> pd.Series:
    """The first failing check per row (checks in priority order); NA where all pass."""
    if not checks:
        return pd.Series(pd.NA, index=index, dtype="str")
    conditions = [np.asarray(c.reindex(index, fill_value=False), dtype=bool) for c, _ in checks]
    chosen = np.select(conditions, [r for _, r in checks], default="")
    return pd.Series(chosen, index=index, dtype="str").replace("", pd.NA)


def identifier_reasons(frame: pd.DataFrame, *, require_contact: bool) -> pd.Series:
    """`frame` has columns uuid (any type), email, phone_number (already normalised) and optionally
    `other_identifier` (bool: e.g. a custom identifier is present)."""
    uuid = frame["uuid"]
    uuid_present = uuid.notna()
    uuid_is_str = uuid.map(lambda v: isinstance(v, str) and v != "").astype(bool)
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
    """Per event: RFC 3339 timestamp, and purchase events' required params (`params` = one column each)."""
    ts = timestamp.astype("str")
    bad_ts = ~ts.str.match(RFC3339_RE).fillna(False).astype(bool)
    is_purchase = (event_name == "purchase").fillna(False).astype(bool)
    missing = pd.Series(False, index=event_name.index)
    if is_purchase.any():
        for name in PURCHASE_REQUIRED:
            missing |= params[name].isna() if name in params else True
    return first_reason(
        [(bad_ts, INVALID_EVENT_TIMESTAMP), (is_purchase & missing, PURCHASE_MISSING_PARAMS)],
        event_name.index,
    )


def size_reasons(line_bytes: pd.Series, max_bytes: int) -> pd.Series:
    return first_reason([(line_bytes > max_bytes, USER_TOO_LARGE)], line_bytes.index)
