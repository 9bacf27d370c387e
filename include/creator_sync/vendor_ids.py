"""Ids that end up in a vendor URL path: validated against a strict pattern and percent-encoded.

InsightIQ's record ids (users, accounts, profiles, webhooks) are UUIDs; the pattern also admits the
shorter ``[A-Za-z0-9_-]`` ids of test data. An id that does not match is refused with InvalidVendorId (a
CreatorSyncConfigError: the task fails at once, nothing is requested) instead of being pasted into a path
where ``../webhooks`` would reach another endpoint and ``?`` would add parameters. External ids are the
customer's own strings: any printable text, encoded with ``quote(id, safe="")``.

Light on purpose (no HTTP stack): the webhook receiver and DAG Params import it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from creator_sync.errors import CreatorSyncConfigError

RECORD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
_RECORD_ID = re.compile(RECORD_ID_PATTERN)
MAX_EXTERNAL_ID = 256


class InvalidVendorId(CreatorSyncConfigError):
    pass


def is_record_id(value: object) -> bool:
    return isinstance(value, str) and _RECORD_ID.fullmatch(value) is not None


def record_id(value: object, what: str = "record id") -> str:
    """`value` as a path segment, when it is a record id (RECORD_ID_PATTERN); InvalidVendorId otherwise."""
    if not is_record_id(value):
        shown = repr(value)[:80]
        raise InvalidVendorId(f"{what} {shown} is not a valid id (letters, digits, '_' and '-', at most 128)")
    return quote(str(value), safe="")


def external_id(value: object) -> str:
    """A customer's external id as a path segment: non-empty printable text, percent-encoded."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_EXTERNAL_ID:
        raise InvalidVendorId(f"external id {repr(value)[:80]} must be 1-{MAX_EXTERNAL_ID} characters")
    if not value.isprintable():
        raise InvalidVendorId(f"external id {repr(value)[:80]} holds control characters")
    return quote(value, safe="")
