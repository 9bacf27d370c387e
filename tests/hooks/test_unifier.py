"""The account's unifier identifier in every anonymize body (insider-data-governance.md section 0, "Identifier
model": an account that unifies on email rejects a request without one): the Insider connection extra
``unifier_identifier``, the Profile API look-up of a missing one, clear errors for a bad setting."""

from __future__ import annotations

import json

import httpx
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.data_governance import ALREADY_GONE, ERASED, FAILED, InsiderDataGovernanceHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.limiter import UnlimitedLimiter
from creator_sync.limits import INSIDER_GOVERNANCE_POOL, INSIDER_PROFILE_POOL

USER = {"uuid": "u-1", "email": "a@example.com", "phone_number": "+6598765432"}


class UnifyingInsider:
    """An account unifying on ``unifier``: an anonymize body without it is a 400 (the sandbox reading)."""

    def __init__(self, unifier: str, user: dict | None = None) -> None:
        self.unifier, self.user = unifier, dict(USER if user is None else user)
        self.bodies: list[dict] = []
        self.profile_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/api/user/v1/profile":
            self.profile_calls += 1
            if not self.user or body["identifiers"].get("uuid") != self.user.get("uuid"):
                return httpx.Response(404, json={"error": "no such user for these identifiers: no data"})
            attrs = {k: v for k, v in self.user.items() if k in body["attributes"]}
            return httpx.Response(200, json={"attributes": attrs, "quota": {"cost": 1}})
        self.bodies.append(body)
        if not body["identifiers"].get(self.unifier):
            return httpx.Response(400, json={"error": f"identifiers.{self.unifier} is required: bad request"})
        return httpx.Response(200)


def governance_hook(fake, **kw) -> InsiderDataGovernanceHook:
    return InsiderDataGovernanceHook(
        transport=httpx.MockTransport(fake),
        limiters={INSIDER_GOVERNANCE_POOL: UnlimitedLimiter(), INSIDER_PROFILE_POOL: UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
        **kw,
    )


@pytest.mark.parametrize("unifier", ["email", "phone_number"])
def test_the_unifier_from_the_connection_is_looked_up_and_sent(conn_env, unifier):
    conn_env(insider_default={"extra": {"unifier_identifier": unifier}})
    fake = UnifyingInsider(unifier)
    result = governance_hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ERASED
    assert fake.bodies == [{"identifiers": {"uuid": "u-1", unifier: USER[unifier]}}]
    assert unifier not in json.dumps(result.as_dict()) and USER[unifier] not in json.dumps(result.as_dict())


def test_the_guard_fails_without_the_unifier_an_email_account_refuses_the_request(conn_env):
    """The guard switched off (the uuid-only body): an account unifying on email refuses it."""
    fake = UnifyingInsider("email")
    result = governance_hook(fake, unifier="uuid").anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and "HTTP 400" in result.detail
    assert fake.bodies == [{"identifiers": {"uuid": "u-1"}}]


def test_unset_the_identifiers_go_as_given_and_a_given_unifier_needs_no_look_up(conn_env):
    fake = UnifyingInsider("uuid")
    hook = governance_hook(fake)
    assert hook.unifier is None
    assert hook.anonymize(identifiers={"uuid": "u-1"}).outcome == ERASED
    assert fake.profile_calls == 0 and fake.bodies == [{"identifiers": {"uuid": "u-1"}}]
    email = UnifyingInsider("email")
    given = {"uuid": "u-1", "email": "a@example.com"}
    assert governance_hook(email, unifier="email").anonymize(identifiers=given).outcome == ERASED
    assert email.profile_calls == 0 and email.bodies == [{"identifiers": given}]


def test_a_user_without_the_unifier_fails_clearly_and_a_missing_user_is_already_gone(conn_env):
    fake = UnifyingInsider("email", user={"uuid": "u-1"})
    result = governance_hook(fake, unifier="email").anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and not result.retryable and fake.bodies == []
    assert "unifies on email" in result.detail and "insider_id" in result.detail
    gone = UnifyingInsider("email", user={})
    assert (
        governance_hook(gone, unifier="email").anonymize(identifiers={"uuid": "u-1"}).outcome == ALREADY_GONE
    )


def test_a_bad_unifier_setting_says_what_is_wrong_and_where(conn_env):
    conn_env(insider_default={"extra": {"unifier_identifier": "name"}})
    hook = governance_hook(UnifyingInsider("uuid"))
    with pytest.raises(
        CreatorSyncConfigError, match=r"insider_default.*unifier_identifier.*uuid, email, phone_number"
    ):
        hook.anonymize(identifiers={"uuid": "u-1"})
    with pytest.raises(CreatorSyncConfigError, match="'unifier'"):
        InsiderDataGovernanceHook(unifier="phone")
