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


@pytest.mark.parametrize(("unifier", "erased"), [("email", True), (None, False)])
def test_an_erase_run_under_the_email_unifier_reading(email_account, conn_env, tmp_path, unifier, erased):
    """The erase task (InsiderAnonymizeOperator) over creators keyed by uuid, against an account unifying on
    email: with the connection's unifier_identifier every one is erased and no body is refused; without it
    (the guard switched off) every request is refused with 400 and nothing is erased."""
    import json

    from creator_sync.operators.data_governance import InsiderAnonymizeOperator
    from devtools.connections import sandbox_hosts

    extra = {"extra": {"unifier_identifier": unifier}} if unifier else {}
    conn_env(sandbox_hosts(email_account), insider_default=extra)
    uuids = [f"er-{unifier}-{i}" for i in range(5)]
    for uuid in uuids:
        _creator(uuid)
    rows = tmp_path / "users.jsonl"
    rows.write_text("".join(json.dumps({"request_key": u, "identifiers": {"uuid": u}}) + "\n" for u in uuids))
    out = tmp_path / "erased.jsonl"
    op = InsiderAnonymizeOperator(task_id="erase", input_path=str(rows), output_path=str(out), claims=False)
    op.execute(context={})  # a 400 is not retryable: the task ends without AnonymizeIncomplete
    results = [json.loads(line)["result"] for line in out.read_text().splitlines()]
    outcomes = {r["outcome"] for r in results}
    if erased:
        assert outcomes == {"erased"}
    else:
        assert outcomes == {"failed"} and all("HTTP 400" in r["detail"] for r in results)
    assert "@example.com" not in out.read_text()  # the looked-up email is sent, never written
