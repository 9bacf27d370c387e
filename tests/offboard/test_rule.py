"""When a creator counts as gone."""

from __future__ import annotations

import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.errors import VendorNotFoundError
from creator_sync.offboard import rule


class FakeInsightIQ:
    def __init__(self, statuses=("NOT_CONNECTED",), exists=True):
        self.statuses, self.exists = statuses, exists
        self.calls = 0

    def get_record(self, resource, user_id):
        assert resource == "users"
        self.calls += 1
        if not self.exists:
            raise VendorNotFoundError(
                "no user", vendor="InsightIQ", method="GET", path="/v1/users/x", status=404
            )
        return {"id": user_id}

    def iter_records(self, resource, *, user_id=None):
        assert resource == "accounts"
        self.calls += 1
        return iter([{"id": f"a{i}", "status": s} for i, s in enumerate(self.statuses)])


ALL = frozenset(rule.RULES)


@pytest.mark.parametrize(
    ("statuses", "gone"),
    [
        (("NOT_CONNECTED", "NOT_CONNECTED"), True),
        (("NOT_CONNECTED", "CONNECTED"), False),
        (("SESSION_EXPIRED",), False),  # an expired session is not leaving
        (("NOT_CONNECTED", "SESSION_EXPIRED"), False),
    ],
)
def test_all_accounts_disconnected(statuses, gone):
    verdict = rule.decide(FakeInsightIQ(statuses), "u1", operator=False, rules=ALL)
    assert verdict.gone is gone
    assert verdict.rule == (rule.ALL_ACCOUNTS_DISCONNECTED if gone else None)


def test_deleted_user_is_gone():
    verdict = rule.decide(FakeInsightIQ(exists=False), "u1", operator=False, rules=ALL)
    assert (verdict.gone, verdict.rule) == (True, rule.USER_DELETED)


def test_operator_request_needs_no_vendor_call():
    iq = FakeInsightIQ(("CONNECTED",))
    verdict = rule.decide(iq, "u1", operator=True, rules=ALL)
    assert (verdict.gone, verdict.rule, iq.calls) == (True, rule.OPERATOR_REQUEST, 0)


def test_disabled_rules_do_not_apply():
    only_operator = frozenset({rule.OPERATOR_REQUEST})
    assert not rule.decide(FakeInsightIQ(), "u1", operator=False, rules=only_operator).gone
    assert not rule.decide(FakeInsightIQ(exists=False), "u1", operator=False, rules=only_operator).gone
    no_operator = frozenset({rule.ALL_ACCOUNTS_DISCONNECTED})
    assert not rule.decide(FakeInsightIQ(("CONNECTED",)), "u1", operator=True, rules=no_operator).gone


def test_rules_from_the_environment():
    assert rule.enabled_rules({}) == ALL
    assert rule.enabled_rules({rule.RULES_ENV: " user_deleted , OPERATOR_REQUEST"}) == {
        rule.USER_DELETED,
        rule.OPERATOR_REQUEST,
    }
    with pytest.raises(
        CreatorSyncConfigError, match="allowed is a comma-separated subset of all_accounts_disconnected"
    ):
        rule.enabled_rules({rule.RULES_ENV: "session_expired"})
