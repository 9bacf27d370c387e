"""The ``unifier`` sandbox reading: an account that unifies on email refuses a Data Governance body without
an email; the hook with ``unifier_identifier: email`` looks the email up and erases."""

from __future__ import annotations

import httpx
import pytest

from creator_sync.hooks.data_governance import ERASED, FAILED, InsiderDataGovernanceHook
from creator_sync.hooks.insider import InsiderHook

pytestmark = pytest.mark.slow
HEADERS = {"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": "1a2b3c4e5d6f"}


@pytest.fixture
def email_account(sandbox_env, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    sandbox_env.configure("insider", {"unifier": "email"})
    yield sandbox_env
    sandbox_env.configure("insider", {"unifier": ""})


def _creator(uuid: str) -> None:
    user = {"identifiers": {"uuid": uuid, "email": f"{uuid}@example.com"}, "attributes": {"name": "Ann"}}
    insider = InsiderHook()
    try:
        assert insider.upsert_batch([user]).accepted == 1
    finally:
        insider.close()


def test_the_sandbox_refuses_a_body_without_the_unifier(email_account):
    _creator("un-1")
    url = f"{email_account.insider_url}/api/user/v1/anonymize"
    refused = httpx.post(url, headers=HEADERS, json={"identifiers": {"uuid": "un-1"}})
    assert refused.status_code == 400 and "identifiers.email is required" in refused.text
    for path in ("/api/user/v1/delete",):
        assert (
            httpx.post(
                f"{email_account.insider_url}{path}", headers=HEADERS, json={"identifiers": {"uuid": "x"}}
            ).status_code
            == 400
        )


@pytest.mark.parametrize(("unifier", "outcome"), [("email", ERASED), ("uuid", FAILED)])
def test_the_hook_sends_the_unifier_it_is_configured_with(email_account, conn_env, unifier, outcome):
    from devtools.connections import sandbox_hosts

    conn_env(sandbox_hosts(email_account), insider_default={"extra": {"unifier_identifier": unifier}})
    _creator(f"un-{unifier}")
    governance = InsiderDataGovernanceHook()
    try:
        assert governance.anonymize(identifiers={"uuid": f"un-{unifier}"}).outcome == outcome
    finally:
        governance.close()
