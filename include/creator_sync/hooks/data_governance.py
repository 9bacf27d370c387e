"""Insider One Data Governance hook: remove one user's PII (anonymize), verified where an answer was lost.

Endpoints (insider-data-governance.md): ``POST /api/user/v1/anonymize`` (user found by identifiers) and
``POST /api/contact/v1/anonymize`` (user found by ``insider_id``); one user per request, 500 requests/min,
irreversible; every PII attribute goes, the last remaining identifier stays (we look users up by ``uuid``, so
the ``uuid`` is what stays); 200 has no documented body; 404 ``no such user for these identifiers`` when
nothing matches. The docs say nothing about idempotency, so the hook never re-sends a request that may have
been processed without first finding out what happened:

* refused before processing (connect error, 429 with or without ``Retry-After``, 503): the HTTP core retries
  (``idempotent=False`` limits its retries to exactly these);
* processed but the answer lost (timeout, dropped connection, 5xx, bad body): the Profile API is asked
  whether the user still holds PII. None left -> erased; no such user -> already gone; PII still there ->
  the request did not take effect and is sent again (at most ``max_sends`` times per call);
* 404 "no such user": nothing to erase (already gone); after a lost answer this means done.

The unifier identifier (insider-data-governance.md section 0, "Identifier model"): every body has to carry the
account's configured unifier identifier under ``identifiers`` (an account unifying on email rejects a request
without an email). The Insider connection's extra ``unifier_identifier`` (``uuid`` | ``email`` |
``phone_number``) names it; unset, the identifiers go as given (creator_sync's rows carry the ``uuid``, its
Insider key). A request whose identifiers lack it gets it from the Profile API first (looked up by the
identifiers given); a user without it cannot be anonymized by identifier and is reported ``failed`` with that
reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insider import InsiderHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import (
    AmbiguousOutcomeError,
    VendorError,
    VendorNotFoundError,
    VendorRateLimitError,
    VendorResponseError,
    VendorServerError,
    VendorTransportError,
)
from creator_sync.http.limiter import build_limiter
from creator_sync.limits import INSIDER_GOVERNANCE_POOL, INSIDER_PROFILE_POOL
from creator_sync.vendor_rules import UNIFIER_IDENTIFIERS

ANONYMIZE_PATH = "/api/user/v1/anonymize"
ANONYMIZE_BY_PROFILE_PATH = "/api/contact/v1/anonymize"
# Attributes the docs name as PII (academy, Mar 2024: gender, birthday, name, surname, age, email, phone
# number, city, country). The Profile API check after a lost answer reads exactly these.
PII_ATTRIBUTES: tuple[str, ...] = (
    "email",
    "phone_number",
    "name",
    "surname",
    "gender",
    "birthday",
    "age",
    "city",
    "country",
)
ERASED, ALREADY_GONE, FAILED = "erased", "already_gone", "failed"
# The Insider connection extra naming the account's unifier identifier (values: UNIFIER_IDENTIFIERS).
UNIFIER_EXTRA = "unifier_identifier"
# Answers that may come after Insider processed the request.
MAYBE_PROCESSED = (AmbiguousOutcomeError, VendorTransportError, VendorServerError, VendorResponseError)


def is_no_such_user(exc: VendorError) -> bool:
    return isinstance(exc, VendorNotFoundError) and "no such user" in (exc.vendor_message or "").lower()


@dataclass
class ErasureResult:
    """What happened to one user. ``detail`` never holds PII (vendor messages name no identifier values)."""

    outcome: str  # erased | already_gone | failed
    detail: str = ""
    requests: int = 0  # anonymize requests sent
    verified: bool = False  # the outcome was checked through the Profile API (after a lost answer)
    lost_answers: int = 0
    retryable: bool = False  # failed, but a later attempt may succeed (transient, rate limit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "requests": self.requests,
            "verified": self.verified,
            "lost_answers": self.lost_answers,
            "retryable": self.retryable,
        }


@dataclass
class PiiCheck:
    found: bool
    pii_left: list[str] = field(default_factory=list)  # attribute names only, never their values


class InsiderDataGovernanceHook(InsiderHook):
    """Anonymize users at Insider One (same connection as the Upsert hook: login = partner, password = token).

    Its own limiter (pool ``insider_data_governance``, 500/min) for anonymize, and the profile limiter for the
    lost-answer checks.
    """

    hook_name = "Insider One Data Governance"
    pool = INSIDER_GOVERNANCE_POOL

    def __init__(
        self, conn_id: str | None = None, *, max_sends: int = 3, unifier: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(conn_id, **kwargs)
        if max_sends < 1:
            raise CreatorSyncConfigError("max_sends must be >= 1")
        self.max_sends = max_sends
        self._unifier = _checked_unifier(unifier, "the hook argument 'unifier'") if unifier else None
        self._unifier_read = bool(unifier)

    @property
    def unifier(self) -> str | None:
        """The account's unifier identifier: the hook argument, else the connection extra, else None (the
        identifiers go as given)."""
        if not self._unifier_read:
            self.client  # noqa: B018 - reads the connection
            extra = self._connection.extra_dejson or {}
            raw = extra.get(UNIFIER_EXTRA)
            where = f"connection '{self.conn_id}': extra {UNIFIER_EXTRA!r}"
            self._unifier = _checked_unifier(raw, where) if raw not in (None, "") else None
            self._unifier_read = True
        return self._unifier

    def _build_client(self, conn) -> VendorClient:
        if self._limiters is None:
            self._limiters = {
                INSIDER_GOVERNANCE_POOL: build_limiter(INSIDER_GOVERNANCE_POOL),
                INSIDER_PROFILE_POOL: build_limiter(INSIDER_PROFILE_POOL),
            }
        return super()._build_client(conn)

    # -- the check after a lost answer --------------------------------------------------------------------

    def check_pii(
        self, identifiers: Mapping[str, Any] | None = None, insider_id: str | None = None
    ) -> PiiCheck:
        """Does Insider hold this user, and which PII attributes (names only) does it still have?"""
        result = self.get_profile(
            identifiers=identifiers, insider_id=insider_id, attributes=list(PII_ATTRIBUTES), quota=True
        )
        if not result.found:
            return PiiCheck(found=False)
        left = sorted(k for k in PII_ATTRIBUTES if result.attributes.get(k) not in (None, "", [], {}))
        return PiiCheck(found=True, pii_left=left)

    # -- anonymize ----------------------------------------------------------------------------------------

    def anonymize(
        self, identifiers: Mapping[str, Any] | None = None, insider_id: str | None = None
    ) -> ErasureResult:
        """Remove one user's PII; returns erased / already_gone / failed (never raises a VendorError).

        ``identifiers`` (e.g. ``{"uuid": ...}``) uses the identifier endpoint, ``insider_id`` the profile-id
        one.
        """
        if bool(identifiers) == bool(insider_id):
            raise CreatorSyncConfigError("anonymize needs exactly one of identifiers or insider_id")
        result = ErasureResult(outcome=FAILED)
        if identifiers:
            identifiers = dict(identifiers)
            if self.unifier and identifiers.get(self.unifier) in (None, ""):
                missing = self._add_unifier(identifiers, result)
                if missing is not None:
                    return missing
            path, body = ANONYMIZE_PATH, {"identifiers": identifiers}
        else:
            path, body = ANONYMIZE_BY_PROFILE_PATH, {"insider_id": insider_id}
        while result.requests < self.max_sends:
            result.requests += 1
            try:
                self.client.request(
                    "POST",
                    path,
                    json_body=body,
                    limiter=INSIDER_GOVERNANCE_POOL,
                    idempotent=False,  # retried by the core only when refused before processing
                    expect_json=False,  # the 200 body is not documented
                )
            except VendorError as exc:
                if is_no_such_user(exc):
                    result.outcome = ALREADY_GONE if not result.lost_answers else ERASED
                    result.detail = (
                        f"Insider holds no such user ({exc.vendor_message})"
                        if not result.lost_answers
                        else "no such user after a lost answer: the earlier request took effect"
                    )
                    return result
                if isinstance(exc, VendorRateLimitError):
                    result.detail = f"rate limited, not processed: {exc.vendor_message}"
                    result.retryable = True
                    return result
                if not isinstance(exc, MAYBE_PROCESSED):
                    result.detail = f"refused: HTTP {exc.status}: {exc.vendor_message}"
                    return result
                result.lost_answers += 1
                verdict = self._after_lost_answer(result, identifiers, insider_id, exc)
                if verdict is not None:
                    return verdict
                continue  # the PII is still there: the request did not take effect, send it again
            result.outcome, result.detail = ERASED, "anonymized"
            return result
        result.detail = (
            f"PII still present after {result.requests} anonymize request(s) whose answers were lost"
        )
        result.retryable = True
        return result

    def _add_unifier(self, identifiers: dict[str, Any], result: ErasureResult) -> ErasureResult | None:
        """Put the user's unifier identifier (read through the Profile API) into ``identifiers``; an
        ErasureResult when that cannot be done (no such user, no such identifier, the look-up failed)."""
        unifier = str(self.unifier)
        try:
            profile = self.get_profile(identifiers=identifiers, attributes=[unifier], quota=True)
        except VendorError as exc:
            result.detail = (
                f"the account unifies on {unifier} and the Profile API look-up of it failed "
                f"({exc.vendor_message or type(exc).__name__}): not sent"
            )
            result.retryable = exc.retryable
            return result
        if not profile.found:
            result.outcome, result.detail = ALREADY_GONE, "Insider holds no such user"
            return result
        value = profile.attributes.get(unifier)
        if value in (None, "", [], {}):
            result.detail = (
                f"the account unifies on {unifier} and Insider holds no {unifier} for this user: it cannot "
                f"be anonymized by identifier (use its insider_id, or fix extra {UNIFIER_EXTRA!r} of "
                f"connection '{self.conn_id}' if the account unifies on another identifier)"
            )
            return result
        identifiers[unifier] = value
        return None

    def _after_lost_answer(
        self, result: ErasureResult, identifiers, insider_id, exc: VendorError
    ) -> ErasureResult | None:
        """Decide from the Profile API; None = the PII is still there (safe to send again)."""
        try:
            check = self.check_pii(identifiers, insider_id)
        except VendorError as check_exc:
            result.detail = (
                f"answer lost ({exc.vendor_message or type(exc).__name__}) and the Profile API check failed "
                f"({check_exc.vendor_message or type(check_exc).__name__}): not re-sent"
            )
            result.retryable = True
            return result
        result.verified = True
        if not check.found:
            result.outcome = ALREADY_GONE
            result.detail = "answer lost; Insider holds no such user"
            return result
        if not check.pii_left:
            result.outcome = ERASED
            result.detail = "answer lost; the Profile API shows no PII left"
            return result
        result.detail = f"answer lost and PII still present ({', '.join(check.pii_left)}): sent again"
        return None


def _checked_unifier(value: Any, where: str) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in UNIFIER_IDENTIFIERS:
        raise CreatorSyncConfigError(
            f"{where} must be one of {', '.join(UNIFIER_IDENTIFIERS)} (the identifier the Insider account "
            f"unifies on, InOne > Settings), got {value!r}"
        )
    return text
