"""Operators end to end over loopback HTTP against the vendor sandboxes (slow)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from creator_sync.http.errors import VendorAuthError
from creator_sync.operators import InsiderUpsertOperator, InsiderWebPushOperator, InsightIQFetchOperator

pytestmark = pytest.mark.slow


def test_fetch_operator_writes_the_contract_parquet(sandbox_env, tmp_path, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path / 'limits'}")
    op = InsightIQFetchOperator(
        task_id="fetch_profiles",
        resource="profiles",
        output_path=f"file://{tmp_path}/{{{{ ds }}}}/profiles.parquet",
        chunk_rows=500,
    )
    op.render_template_fields({"ds": "2026-01-02"})
    result = op.execute(context={})
    expected = sandbox_env.stats("insightiq")["accounts"]  # one profile per connected account
    assert result["count"] == expected
    assert result["path"] == f"file://{tmp_path}/2026-01-02/profiles.parquet"
    assert result["http"]["rate_limited_429"] == 0
    table = pq.read_table(tmp_path / "2026-01-02" / "profiles.parquet")
    assert table.num_rows == expected
    assert {"id", "user.id", "account.id", "work_platform.name"} <= set(table.column_names)
    emails = next(v for v in table.column("emails").to_pylist() if v)
    assert isinstance(json.loads(emails), list)  # list leaves stored as JSON text


def test_upsert_operator_sends_and_writes_rejected_rows(sandbox_env, tmp_path):
    src = tmp_path / "users.jsonl"
    users = [{"identifiers": {"uuid": f"c-{i}"}, "attributes": {"name": f"C{i}"}} for i in range(1200)]
    users[5] = {"identifiers": {"email": "broken"}}
    users[1100] = {"identifiers": {"phone_number": "12345"}}
    src.write_text("".join(json.dumps(u) + "\n" for u in users))
    rejected = tmp_path / "rejected.jsonl"
    op = InsiderUpsertOperator(
        task_id="upsert", input_path=str(src), rejected_path=str(rejected), skip_hook="True"
    )
    result = op.execute(context={})
    assert (result["requests"], result["sent"], result["accepted"], result["failed"]) == (2, 1200, 1198, 2)
    rows = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [r["line"] for r in rows] == [6, 1101]
    assert all(r["stage"] == "insider" and r["reasons"] for r in rows)
    stats = sandbox_env.stats("insider")
    assert stats["upsert_requests"] == 2 and stats["events_by_skip_hook"]["true"] == 0


def test_operator_auth_error_fails_without_retry(sandbox_env, conn_env, tmp_path):
    from devtools.connections import sandbox_hosts

    conn_env(sandbox_hosts(sandbox_env), insider_web_push_default={"password": "not-the-key"})
    op = InsiderWebPushOperator(task_id="push", title="hello", language="en_US")
    with pytest.raises(VendorAuthError) as info:
        op.execute(context={})
    assert "'insider_web_push_default'" in str(info.value) and "not-the-key" not in str(info.value)
    assert op.retry_policy.evaluate(info.value, 1, op.retries + 1).action.value == "fail"
    assert sandbox_env.stats("web_push")["requests_by_status"] == {"401": 1}
