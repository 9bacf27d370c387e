"""When a creator counts as gone: the offboarding rule (docs/offboarding.md).

A creator (an InsightIQ user) has left when one of the enabled rules holds:

* ``all_accounts_disconnected``: none of the user's accounts is connected any more. Read from InsightIQ
  (``GET /v1/accounts?user_id=``), never taken from the ``ACCOUNTS.DISCONNECTED`` webhook alone: the webhook
  only says one account changed. ``SESSION_EXPIRED`` counts as connected (the creator only has to log in
  again), so ``SESSION.EXPIRED`` alone is never leaving;
* ``user_deleted``: InsightIQ answers 404 for the user (``GET /v1/users/{id}``);
* ``operator_request``: an operator named the creator on the creator_offboard trigger form.

``CREATOR_SYNC_OFFBOARD_RULES`` (comma-separated) enables a subset; default all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from creator_sync import settings
from creator_sync.http.errors import VendorNotFoundError

ALL_ACCOUNTS_DISCONNECTED = "all_accounts_disconnected"
USER_DELETED = "user_deleted"
OPERATOR_REQUEST = "operator_request"
RULES = (ALL_ACCOUNTS_DISCONNECTED, USER_DELETED, OPERATOR_REQUEST)
RULES_ENV = "CREATOR_SYNC_OFFBOARD_RULES"
# Account statuses that mean "still with us" (InsightIQ: CONNECTED, NOT_CONNECTED, SESSION_EXPIRED).
STILL_CONNECTED = frozenset({"CONNECTED", "SESSION_EXPIRED"})


def enabled_rules(environ: dict[str, str] | None = None) -> frozenset[str]:
    return frozenset(settings.load(environ).offboard_rules)


@dataclass(frozen=True)
class Verdict:
    gone: bool
    rule: str | None  # the rule that holds, None when the creator stays
    detail: str  # no PII: counts and statuses only


def decide(insightiq, user_id: str, *, operator: bool, rules: frozenset[str]) -> Verdict:
    """Is this creator gone? ``insightiq`` is an InsightIQHook (``get_record``, ``iter_records``)."""
    if operator and OPERATOR_REQUEST in rules:
        return Verdict(True, OPERATOR_REQUEST, "an operator asked for it")
    try:
        insightiq.get_record("users", user_id)
    except VendorNotFoundError:
        if USER_DELETED in rules:
            return Verdict(True, USER_DELETED, "InsightIQ has no such user")
        return Verdict(False, None, f"InsightIQ has no such user, but rule {USER_DELETED} is not enabled")
    accounts = list(insightiq.iter_records("accounts", user_id=user_id))
    statuses = [str(a.get("status") or "").upper() for a in accounts]
    connected = sum(s in STILL_CONNECTED for s in statuses)
    seen = ", ".join(sorted(set(statuses))) or "none"
    summary = f"{connected} of {len(accounts)} account(s) connected ({seen})"
    if not connected and ALL_ACCOUNTS_DISCONNECTED in rules:
        return Verdict(True, ALL_ACCOUNTS_DISCONNECTED, summary)
    if not connected:
        return Verdict(False, None, f"{summary}, but rule {ALL_ACCOUNTS_DISCONNECTED} is not enabled")
    return Verdict(False, None, summary)
