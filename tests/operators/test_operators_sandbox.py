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


def test_upsert_operator_sends_once_and_dead_letters_insider_rejections(sandbox_env, tmp_path):
    from types import SimpleNamespace

    from creator_sync.store import StateStore

    src = tmp_path / "users.jsonl"
    users = [{"identifiers": {"uuid": f"c-{i}"}, "attributes": {"name": f"C{i}"}} for i in range(1200)]
    users[5] = {"identifiers": {"email": "broken"}}
    users[1100] = {"identifiers": {"phone_number": "12345"}}
    src.write_text("".join(json.dumps(u) + "\n" for u in users))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    op = InsiderUpsertOperator(
        task_id="upsert", users_path=str(src), skip_hook="True", run_id="run-1", state_url=state_url
    )
    result = op.execute(context={"ti": SimpleNamespace(task_id="upsert", map_index=-1, try_number=1)})
    assert (result["send"]["requests"], result["send"]["users_sent"]) == (2, 1198)
    assert result["send"]["rejected"] == {"vendor_rejected": 2}
    letters = StateStore(state_url).dead_letters(reasons=["vendor_rejected"])
    assert sorted(dl.user_key for dl in letters) == ["12345", "broken"] and all(dl.detail for dl in letters)
    stats = sandbox_env.stats("insider")
    assert stats["upsert_requests"] == 2 and stats["events_by_skip_hook"]["true"] == 0

    again = op.execute(context={"ti": SimpleNamespace(task_id="upsert", map_index=-1, try_number=2)})
    assert again["send"]["unchanged"] == 1198  # the rejected two are tried again, nothing else
    assert sandbox_env.stats("insider")["upsert_requests"] == 3


def test_operator_auth_error_fails_without_retry(sandbox_env, conn_env, tmp_path):
    from devtools.connections import sandbox_hosts

    conn_env(sandbox_hosts(sandbox_env), insider_web_push_default={"password": "not-the-key"})
    op = InsiderWebPushOperator(task_id="push", title="hello", language="en_US")
    with pytest.raises(VendorAuthError) as info:
        op.execute(context={})
    assert "'insider_web_push_default'" in str(info.value) and "not-the-key" not in str(info.value)
    assert op.retry_policy.evaluate(info.value, 1, op.retries + 1).action.value == "fail"
    assert sandbox_env.stats("web_push")["requests_by_status"] == {"401": 1}
