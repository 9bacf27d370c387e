"""InsiderDataGovernanceHook.anonymize: every network outcome ends erased, already gone or failed - never a
user left with PII reported as erased, never an error for a user that is already erased, and a request that
may have been processed is not sent again before the Profile API says its PII is still there."""

from __future__ import annotations

import json

import httpx
import pytest

from creator_sync.hooks.data_governance import (
    ALREADY_GONE,
    ERASED,
    FAILED,
    PII_ATTRIBUTES,
    InsiderDataGovernanceHook,
)
from creator_sync.http.client import RetrySettings
from creator_sync.http.limiter import UnlimitedLimiter
from creator_sync.limits import INSIDER_GOVERNANCE_POOL, INSIDER_PROFILE_POOL, rate_limit

NO_SUCH_USER = {"error": "no such user for these identifiers: no data"}
TOO_MANY = {"error": "rejected: too many requests"}


class FakeInsider:
    """One stored user; ``script`` says what each anonymize request does (in order, then "ok")."""

    def __init__(self, script=(), *, exists=True, profile_fails=False):
        self.user = {"uuid": "u-1", "email": "a@example.com", "phone_number": "+6598765432", "name": "Ann"}
        self.exists = exists
        self.script = list(script)
        self.profile_fails = profile_fails
        self.anonymize_calls = 0
        self.processed = 0
        self.profile_calls = 0

    def _erase(self):
        self.processed += 1
        self.user = {"uuid": self.user["uuid"]}  # the last identifier stays, every PII attribute goes

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/api/user/v1/profile":
            self.profile_calls += 1
            if self.profile_fails:
                raise httpx.ConnectError("profile down", request=request)
            if not self.exists:
                return httpx.Response(404, json=NO_SUCH_USER)
            attrs = {k: v for k, v in self.user.items() if k in body["attributes"]}
            return httpx.Response(200, json={"attributes": attrs, "quota": {"cost": 1}})
        assert request.url.path == "/api/user/v1/anonymize"
        assert body == {"identifiers": {"uuid": "u-1"}}
        self.anonymize_calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "429":
            return httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "1"})
        if step == "429-long":
            return httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "3600"})
        if step == "refused-timeout":  # the request never reached Insider
            raise httpx.ReadTimeout("timed out", request=request)
        if step == "403":
            return httpx.Response(403, json={"success": False, "message": "Access Denied."})
        if not self.exists:
            return httpx.Response(404, json=NO_SUCH_USER)
        self._erase()
        if step == "lost-timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if step == "lost-502":
            return httpx.Response(502, json={"success": False, "message": "bad gateway"})
        if step == "lost-drop":
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return httpx.Response(200)


def hook(fake, *, max_sends=3, sleeps=None) -> InsiderDataGovernanceHook:
    h = InsiderDataGovernanceHook(
        transport=httpx.MockTransport(fake),
        limiters={INSIDER_GOVERNANCE_POOL: UnlimitedLimiter(), INSIDER_PROFILE_POOL: UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=3, backoff_initial=0, jitter=0, max_retry_after=60),
        max_sends=max_sends,
    )
    if sleeps is not None:
        h.client._sleep = sleeps.append
    return h


def test_pool_and_limit_are_declared_once():
    spec = rate_limit(INSIDER_GOVERNANCE_POOL)
    assert (spec.limit, spec.window) == (500, 60)


def test_plain_success_erases(conn_env):
    fake = FakeInsider()
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert (result.outcome, result.requests, fake.processed) == (ERASED, 1, 1)
    assert fake.user == {"uuid": "u-1"}
    assert fake.profile_calls == 0


def test_unknown_user_is_already_gone_not_an_error(conn_env):
    fake = FakeInsider(exists=False)
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ALREADY_GONE and "no such user" in result.detail


def test_erasing_an_erased_user_again_is_no_error(conn_env):
    fake = FakeInsider()
    h = hook(fake)
    assert h.anonymize(identifiers={"uuid": "u-1"}).outcome == ERASED
    assert h.anonymize(identifiers={"uuid": "u-1"}).outcome == ERASED
    assert fake.user == {"uuid": "u-1"}


@pytest.mark.parametrize("lost", ["lost-timeout", "lost-502", "lost-drop"])
def test_lost_answer_after_processing_is_verified_not_resent(conn_env, lost):
    fake = FakeInsider([lost])
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ERASED and result.verified and result.lost_answers == 1
    assert fake.anonymize_calls == 1  # not sent again: the Profile API showed no PII left
    assert fake.profile_calls == 1


def test_lost_answer_without_processing_is_sent_again_after_the_check(conn_env):
    fake = FakeInsider(["refused-timeout"])
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ERASED and result.requests == 2
    assert fake.profile_calls == 1 and fake.processed == 1
    assert fake.user == {"uuid": "u-1"}


def test_lost_answer_then_no_such_user_means_done(conn_env):
    fake = FakeInsider(["refused-timeout"])
    h = hook(fake)
    real = fake.__call__

    def deleted_meanwhile(request):  # the profile check still sees PII, then the user is deleted
        response = real(request)
        if request.url.path == "/api/user/v1/profile":
            fake.exists = False
        return response

    h = InsiderDataGovernanceHook(
        transport=httpx.MockTransport(deleted_meanwhile),
        limiters=h._limiters,
        retry=RetrySettings(max_attempts=3, backoff_initial=0, jitter=0),
    )
    result = h.anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ERASED and "no such user after a lost answer" in result.detail


def test_lost_answer_and_failing_check_is_not_resent(conn_env):
    fake = FakeInsider(["refused-timeout"], profile_fails=True)
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and result.retryable
    assert fake.anonymize_calls == 1  # nobody knows whether it arrived: not re-sent blindly


def test_lost_answers_every_time_stop_at_max_sends_and_stay_retryable(conn_env):
    fake = FakeInsider(["refused-timeout"] * 5)
    result = hook(fake, max_sends=2).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and result.retryable and fake.anonymize_calls == 2
    assert "PII still present" in result.detail


def test_429_with_retry_after_is_waited_out_and_sent_again(conn_env):
    fake = FakeInsider(["429", "429"])
    sleeps: list[float] = []
    result = hook(fake, sleeps=sleeps).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == ERASED and fake.anonymize_calls == 3 and fake.processed == 1
    assert len(sleeps) == 2 and all(s >= 1 for s in sleeps)
    assert fake.profile_calls == 0  # a 429 is refused before processing: no check needed


def test_429_longer_than_allowed_fails_retryable_with_nothing_erased(conn_env):
    fake = FakeInsider(["429-long"])
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and result.retryable and fake.processed == 0
    assert fake.user["email"]  # still there: reported as failed, not as erased


def test_permanent_refusal_fails_with_reason_not_retryable(conn_env):
    fake = FakeInsider(["403"])
    result = hook(fake).anonymize(identifiers={"uuid": "u-1"})
    assert result.outcome == FAILED and not result.retryable and "403" in result.detail
    assert fake.anonymize_calls == 1


def test_check_pii_reports_attribute_names_only(conn_env):
    fake = FakeInsider()
    check = hook(fake).check_pii({"uuid": "u-1"})
    assert check.found and set(check.pii_left) == {"email", "phone_number", "name"}
    assert set(check.pii_left) <= set(PII_ATTRIBUTES)
    assert "a@example.com" not in repr(check)


def test_profile_id_endpoint_and_argument_checks(conn_env):
    seen = []

    def respond(request):
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200)

    h = InsiderDataGovernanceHook(
        transport=httpx.MockTransport(respond),
        limiters={INSIDER_GOVERNANCE_POOL: UnlimitedLimiter(), INSIDER_PROFILE_POOL: UnlimitedLimiter()},
    )
    assert h.anonymize(insider_id="iid-9").outcome == ERASED
    assert seen == [("/api/contact/v1/anonymize", {"insider_id": "iid-9"})]
    with pytest.raises(ValueError, match="exactly one"):
        h.anonymize(identifiers={"uuid": "x"}, insider_id="y")
    with pytest.raises(ValueError, match="exactly one"):
        h.anonymize()
