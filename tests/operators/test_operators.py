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
    upsert = InsiderUpsertOperator(task_id="u", users_path="{{ ds }}/users.jsonl")
    assert upsert.pool == "insider_upsert" and upsert.retry_policy is VENDOR_RETRY_POLICY
    assert {"users_path", "skip_hook", "dry_run", "run_id"} <= set(upsert.template_fields)
    assert upsert.ui_color and upsert.__doc__
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


class _TI:
    def __init__(self, try_number: int = 1):
        self.task_id, self.map_index, self.try_number = "upsert", -1, try_number


def _upsert_op(tmp_path, users_path, **kw):
    return InsiderUpsertOperator(
        task_id="upsert",
        users_path=str(users_path),
        run_id="run-1",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        **kw,
    )


def test_upsert_operator_sends_once_and_dead_letters_with_reasons(conn_env, transport, tmp_path):
    from creator_sync.store import StateStore

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
        json.dumps({"identifiers": {"uuid": "b", "email": "bad"}}),
        "{not json",
        json.dumps({"identifiers": {"uuid": "huge"}, "attributes": {"custom": {"x": "y" * 5_000_000}}}),
        "",
        json.dumps({"identifiers": {"uuid": "c"}}),
    ]
    src.write_text("\n".join(lines) + "\n")
    op = _upsert_op(tmp_path, src, skip_hook="{{ params.skip }}")
    op.render_template_fields({"params": {"skip": True}})
    result = op.execute(context={"ti": _TI()})
    send = result["send"]
    assert (send["users_sent"], send["requests"]) == (2, 1)
    assert send["rejected"] == {"vendor_rejected": 1, "user_too_large": 1, "malformed_source_record": 1}
    body = json.loads(transport["requests"][0].content)
    assert body["skip_hook"] is True and len(body["users"]) == 3
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert state.count_dead_letters("run-1") == {
        "vendor_rejected": 1,
        "user_too_large": 1,
        "malformed_source_record": 1,
    }
    letter = state.dead_letters(reasons=["vendor_rejected"])[0]
    assert letter.user_key == "b" and "not a valid email" in letter.detail
    assert state.run_client_totals("run-1")["Insider"]["requests"] == 1  # the attempt's counters, stored

    # a retried attempt sends nothing again (ledger), the run's figures stay the run's
    again = op.execute(context={"ti": _TI(try_number=2)})
    assert again["send"]["requests"] == 1 and again["send"]["unchanged"] == 2  # only b is tried again
    # (this time the answer names users.1 of a 1-user request: no user, so b counts as accepted)
    assert state.run_outcomes("run-1")["sent"] == {"users": 3, "events": 0}
    assert state.run_client_totals("run-1")["Insider"]["requests"] == 2  # both attempts


def test_upsert_operator_dry_run_sends_nothing(conn_env, transport, tmp_path):
    transport["handler"] = lambda req: pytest.fail("a dry run must not call Insider")
    src = tmp_path / "users.jsonl"
    src.write_text(json.dumps({"identifiers": {"uuid": "a"}}) + "\n")
    op = _upsert_op(tmp_path, src, dry_run="{{ params.dry_run }}")
    op.render_template_fields({"params": {"dry_run": True}})
    result = op.execute(context={"ti": _TI()})
    assert result["dry_run"] is True and result["send"]["users_sent"] == 1 and transport["requests"] == []


def test_the_callback_url_the_sync_sends_is_accepted_by_the_receiver(
    conn_env, transport, tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient

    from creator_sync.webhooks.app import Receiver, create_app

    monkeypatch.setenv("CREATOR_SYNC_PUBLIC_BASE_URL", "https://airflow.example.com/")
    monkeypatch.delenv("CREATOR_SYNC_INSIDER_CALLBACK_TOKEN", raising=False)
    transport["handler"] = lambda req: httpx.Response(200, json={"data": {"successful": {"count": 1}}})
    src = tmp_path / "users.jsonl"
    src.write_text(json.dumps({"identifiers": {"uuid": "a"}}) + "\n")
    _upsert_op(tmp_path, src).execute(context={"ti": _TI()})
    url = httpx.URL(json.loads(transport["requests"][0].content)["error_callback_endpoint"])
    assert (url.host, url.path) == ("airflow.example.com", "/creator-sync/webhooks/insider-errors")
    assert url.params.get("token")

    from airflow.sdk import BaseHook

    request_token = BaseHook.get_connection("insider_default").password  # what the API server reads
    sunk = []
    receiver = Receiver(
        insider_token=lambda: request_token,
        dead_letter_sink=lambda users, reason, raw: sunk.append(reason) or 1,
    )
    client = TestClient(create_app(receiver))
    path = url.path.removeprefix("/creator-sync")  # the plugin mounts the app under /creator-sync
    payload = {"users": [{"identifiers": {"uuid": "a"}}]}
    accepted = client.post(path, params={"token": url.params["token"]}, json=payload)
    assert accepted.status_code == 200 and sunk == ["unification_error"]
    assert client.post(path, params={"token": "guessed"}, json=payload).status_code == 401


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
