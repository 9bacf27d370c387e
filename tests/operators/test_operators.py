"""Operators over MockTransport: Parquet fetch, upsert with rejected rows, profile, web push, retry policy."""

from __future__ import annotations

import json

import httpx
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from creator_sync.files import write_records_parquet
from creator_sync.hooks.base import VendorHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.errors import VendorAuthError, VendorServerError
from creator_sync.operators import (
    InsiderProfileOperator,
    InsiderUpsertOperator,
    InsiderWebPushOperator,
    InsightIQFetchOperator,
)
from creator_sync.retry import VENDOR_RETRY_POLICY


@pytest.fixture
def transport(monkeypatch):
    """Route every hook the operators build through a MockTransport handler; returns the request log."""
    state = {"handler": None, "requests": []}

    def handler(request):
        state["requests"].append(request)
        return state["handler"](request)

    monkeypatch.setattr(VendorHook, "default_transport", httpx.MockTransport(handler))
    original = VendorHook._client_kwargs

    def fast_retries(self):
        kw = original(self)
        kw["retry"] = RetrySettings(max_attempts=2, backoff_initial=0, jitter=0)
        return kw

    monkeypatch.setattr(VendorHook, "_client_kwargs", fast_retries)
    return state


def content(i):
    return {
        "id": f"c{i}",
        "user": {"id": f"u{i % 7}"},
        "work_platform": {"name": "YouTube"},
        "emails": [{"type": "WORK", "email_id": f"e{i}@x.co"}],
        "engagement": {"like_count": i, "view_count": None if i % 2 else i * 10},
        "tags": [] if i % 3 else ["a", "b"],
    }


def test_fetch_operator_writes_parquet_and_returns_path_and_count(conn_env, transport, tmp_path):
    def respond(req):
        off = int(req.url.params["offset"])
        assert req.url.params["from_date"] == "2024-01-01" and req.url.params["to_date"] == "2024-01-02"
        return httpx.Response(200, json={"data": [content(off + i) for i in range(100 if off < 200 else 50)]})

    transport["handler"] = respond
    out = tmp_path / "contents" / "2024-01-01.parquet"
    op = InsightIQFetchOperator(
        task_id="fetch",
        resource="contents",
        from_date="2024-01-01",
        to_date="2024-01-02",
        output_path=str(out),
        chunk_rows=64,
    )
    result = op.execute(context={})
    assert result["path"] == str(out) and result["count"] == 250
    assert result["http"]["requests"] == 3
    assert json.dumps(result)  # XCom-able, no records in it
    table = pq.read_table(out)
    assert table.num_rows == 250
    assert {"id", "user.id", "work_platform.name", "emails", "engagement.like_count", "tags"} <= set(
        table.column_names
    )
    row = table.slice(0, 1).to_pylist()[0]
    assert json.loads(row["emails"]) == [{"type": "WORK", "email_id": "e0@x.co"}]
    assert json.loads(row["tags"]) == ["a", "b"]


def test_fetch_operator_defaults_and_templates():
    op = InsightIQFetchOperator(
        task_id="fetch", resource="contents", from_date="{{ ds }}", output_path="/data/{{ ds }}.parquet"
    )
    assert op.pool == "insightiq_api"
    assert op.retry_policy is VENDOR_RETRY_POLICY
    assert op.retries == 3
    assert {"resource", "from_date", "to_date", "filters", "output_path"} <= set(op.template_fields)
    op.render_template_fields({"ds": "2024-05-06"})
    assert op.from_date == "2024-05-06" and op.output_path == "/data/2024-05-06.parquet"
    assert InsiderUpsertOperator(task_id="u", input_path="i", rejected_path="r").pool == "insider_upsert"
    assert InsiderProfileOperator(task_id="p", identifiers={"uuid": "x"}).pool == "insider_profile"
    assert InsiderWebPushOperator(task_id="w", title="t", language="en_US").pool == "insider_web_push"


def test_dag_default_args_win_over_operator_defaults():
    import datetime as dt

    from airflow.sdk import DAG

    with DAG("d", schedule=None, start_date=dt.datetime(2024, 1, 1), default_args={"retries": 7}):
        op = InsightIQFetchOperator(task_id="f", resource="contents", output_path="/x.parquet")
        op2 = InsightIQFetchOperator(
            task_id="g", resource="contents", output_path="/x.parquet", pool="p", retries=1
        )
    assert (op.retries, op.pool, op.retry_policy) == (7, "insightiq_api", VENDOR_RETRY_POLICY)
    assert (op2.retries, op2.pool) == (1, "p")


def test_parquet_writer_unifies_columns_and_types_across_chunks(tmp_path):
    records = [
        {"id": 1, "a": 1},
        {"id": 2, "a": None},
        {"id": 3, "a": 2.5, "b": {"c": [1]}},
        {"id": 4, "a": "x"},
    ]
    n = write_records_parquet(iter(records), tmp_path / "x.parquet", chunk_rows=1)
    table = pq.read_table(tmp_path / "x.parquet")
    assert n == 4 and table.num_rows == 4
    assert table.column("a").to_pylist() == ["1", None, "2.5", "x"]  # int/float/str across chunks -> text
    assert table.column("b.c").to_pylist() == [None, None, "[1]", None]
    assert write_records_parquet([], f"file://{tmp_path}/empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_upsert_operator_writes_rejected_rows_with_reasons(conn_env, transport, tmp_path):
    fail = {
        "data": {
            "successful": {},
            "fail": {
                "count": 1,
                "errors": {"users.1.identifiers.*.regexp(^.+@.+\\..+$)": ["not a valid email"]},
            },
        }
    }
    transport["handler"] = lambda req: httpx.Response(200, json=fail)
    src = tmp_path / "users.jsonl"
    lines = [
        json.dumps({"identifiers": {"uuid": "a"}}),
        json.dumps({"identifiers": {"email": "bad"}}),
        "{not json",
        json.dumps({"identifiers": {"uuid": "huge"}, "attributes": {"custom": {"x": "y" * 5_000_000}}}),
        "",
        json.dumps({"identifiers": {"uuid": "c"}}),
    ]
    src.write_text("\n".join(lines) + "\n")
    rejected = tmp_path / "out" / "rejected.jsonl"
    op = InsiderUpsertOperator(
        task_id="upsert", input_path=str(src), rejected_path=str(rejected), skip_hook="{{ params.skip }}"
    )
    op.render_template_fields({"params": {"skip": True}})
    result = op.execute(context={})
    assert {
        k: result[k] for k in ("users", "requests", "sent", "accepted", "failed", "rejected_locally")
    } == {
        "users": 5,
        "requests": 1,
        "sent": 3,
        "accepted": 2,
        "failed": 1,
        "rejected_locally": 2,
    }
    body = json.loads(transport["requests"][0].content)
    assert body["skip_hook"] is True and len(body["users"]) == 3
    rows = [json.loads(line) for line in rejected.read_text().splitlines()]
    by_line = {r["line"]: r for r in rows}
    assert set(by_line) == {2, 3, 4}
    assert by_line[2]["stage"] == "insider" and "not a valid email" in by_line[2]["reasons"][0]
    assert by_line[2]["user"] == {"identifiers": {"email": "bad"}}
    assert by_line[3]["stage"] == "local" and "not valid JSON" in by_line[3]["reasons"][0]
    assert by_line[4]["stage"] == "local" and "5,000,000-byte" in by_line[4]["reasons"][0]


def test_auth_error_fails_the_task_without_retry(conn_env, transport, tmp_path):
    transport["handler"] = lambda req: httpx.Response(
        401, json={"error": {"message": "Authentication failed"}}
    )
    op = InsightIQFetchOperator(task_id="fetch", resource="contents", output_path=str(tmp_path / "x.parquet"))
    with pytest.raises(VendorAuthError) as info:
        op.execute(context={})
    assert len(transport["requests"]) == 1
    decision = op.retry_policy.evaluate(info.value, try_number=1, max_tries=op.retries + 1)
    assert decision.action.value == "fail" and "Not retryable" in decision.reason
    assert "'insightiq_default'" in str(info.value)
    assert not (tmp_path / "x.parquet").exists()


def test_transient_errors_are_left_to_airflow_retries(conn_env, transport, tmp_path):
    transport["handler"] = lambda req: httpx.Response(503, json={"error": "maintenance"})
    op = InsightIQFetchOperator(task_id="fetch", resource="contents", output_path=str(tmp_path / "x.parquet"))
    with pytest.raises(VendorServerError) as info:
        op.execute(context={})
    assert len(transport["requests"]) == 2  # the client's own attempts
    assert op.retry_policy.evaluate(info.value, 1, 4).action.value == "retry"
    assert VENDOR_RETRY_POLICY.evaluate(AirflowFailException("x"), 1, 4).action.value == "default"


def test_retry_policy_serializes_for_dag_serialization():
    data = VENDOR_RETRY_POLICY.serialize()
    assert data["rules"][0]["action"] == "fail"
    assert "creator_sync.http.errors.VendorPermanentError" in data["rules"][0]["exception"]
    restored = type(VENDOR_RETRY_POLICY).deserialize(data)
    err = VendorAuthError("x", vendor="v", method="GET", path="/", status=401)
    assert restored.evaluate(err, 1, 2).action.value == "fail"


def test_profile_and_web_push_operators(conn_env, transport):
    def respond(req):
        if req.url.path == "/v1/single":
            return httpx.Response(201, json={"success": True, "campaign_id": 7})
        return httpx.Response(200, json={"attributes": {"name": "A"}, "events": {}, "quota": {"cost": 1}})

    transport["handler"] = respond
    profile = InsiderProfileOperator(task_id="p", identifiers={"uuid": "u"}, attributes=["name"]).execute({})
    assert profile["found"] and profile["attributes"] == {"name": "A"}
    assert InsiderWebPushOperator(task_id="w", title="T", language="en_US").execute({})["campaign_id"] == 7
