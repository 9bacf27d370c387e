"""creator_offboard's task bodies and its erase operator, with fake vendors: who is collected, what is
purged and logged, what the report says; a retried erase never re-sends a settled user."""

from __future__ import annotations

import json

import httpx
import pytest

from creator_sync.hooks.data_governance import InsiderDataGovernanceHook
from creator_sync.http.errors import VendorNotFoundError
from creator_sync.offboard import steps
from creator_sync.operators.data_governance import AnonymizeIncomplete, InsiderAnonymizeOperator
from creator_sync.store import OffboardingState, StateStore, creator_hash


def _nf(path):
    return VendorNotFoundError("nf", vendor="InsightIQ", method="GET", path=path, status=404)


class FakeInsightIQ:
    accounts = {
        "u1": ["NOT_CONNECTED", "NOT_CONNECTED"],
        "u2": ["CONNECTED", "NOT_CONNECTED"],
        "u3": ["CONNECTED"],
    }

    def get_user_by_external_id(self, external_id):
        if external_id != "ext-3":
            raise _nf("/v1/users/external_id")
        return {"id": "u3"}

    def get_record(self, resource, record_id):
        if resource == "accounts":
            raise _nf("/v1/accounts")
        assert resource == "users"
        if record_id not in self.accounts:
            raise _nf("/v1/users")
        return {"id": record_id}

    def iter_records(self, resource, *, user_id=None):
        assert resource == "accounts"
        return iter({"status": s} for s in self.accounts[user_id])


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _queue(state):
    for uid in ("u1", "u2"):
        state.queue(user_id=uid, account_id=f"a-{uid}", reason="accounts_disconnected", source="webhook")
    state.queue(user_id=None, account_id="a9", reason="accounts_disconnected", source="webhook")


def test_collect_decides_by_the_rule_and_marks_only_the_gone(store, tmp_path):
    state = OffboardingState(store)
    _queue(state)
    run = steps.OffboardRun.from_params("r1", {"external_ids": ["ext-3", "ext-404"], "dry_run": False})
    out = steps.collect(FakeInsightIQ(), run, store, steps.work_dir(run.run_id))
    candidates = steps._read_jsonl(out["candidates_path"])
    assert {c["user_id"]: c["rule"] for c in candidates} == {
        "u1": "all_accounts_disconnected",
        "u3": "operator_request",
    }
    assert all(c["identifiers"] == {"uuid": c["user_id"]} for c in candidates)
    assert [k["user_id"] for k in out["kept"]] == ["u2"]
    assert {u.get("external_id") or u.get("account_id") for u in out["unresolved"]} == {"ext-404", "a9"}
    assert state.is_offboarded("u1") and state.is_offboarded("u3") and not state.is_offboarded("u2")
    assert {r["request_key"] for r in state.requests()} == {"u1", "u3", "account:a9"}


def test_dry_run_lists_and_changes_nothing(store, tmp_path):
    state = OffboardingState(store)
    _queue(state)
    store.record_batch(run_id="r0", batch_key="b", events=[], hashes=[("u1", "h")], failures=[])
    run = steps.OffboardRun.from_params("r2", {"user_ids": ["u7"], "dry_run": True})
    out = steps.collect(FakeInsightIQ(), run, store, steps.work_dir(run.run_id))
    candidates = {c["user_id"]: c for c in steps._read_jsonl(out["candidates_path"])}
    assert set(candidates) == {"u1", "u7"}
    assert candidates["u1"]["would_purge"]["attribute_hashes"] == 1
    assert state.offboarded_hashes() == set()
    assert {r["request_key"] for r in state.requests()} == {"u1", "u2", "account:a9"}
    purged = steps.purge(run, out, str(tmp_path / "none.jsonl"), store)
    text = steps.report(run, out, purged, store)["text"]
    assert "DRY RUN" in text and "`u7`" in text and store.attribute_hashes(["u1"])


def test_purge_and_report_erased_and_failed(store, tmp_path):
    state = OffboardingState(store)
    store.record_batch(run_id="r0", batch_key="b", events=[], hashes=[("u1", "h"), ("u3", "h3")], failures=[])
    run = steps.OffboardRun.from_params("r3", {"user_ids": ["u1", "u3"]})
    out = steps.collect(FakeInsightIQ(), run, store, steps.work_dir(run.run_id))
    results = steps.work_dir(run.run_id) / "results.jsonl"
    results.write_text(
        json.dumps({"request_key": "u1", "result": {"outcome": "erased", "detail": "anonymized"}})
        + "\n"
        + json.dumps(
            {
                "request_key": "u3",
                "result": {"outcome": "failed", "detail": "rate limited", "retryable": True},
            }
        )
        + "\n"
    )
    purged = steps.purge(run, out, str(results), store)
    assert purged["outcomes"] == {"erased": 1, "failed": 1}
    assert store.attribute_hashes(["u1", "u3"]).keys() == {"u3"}  # the failed one is not purged yet
    assert [r["request_key"] for r in state.requests()] == ["u3"]  # and stays queued for a later run
    assert state.is_offboarded("u3")  # still skipped by creator_sync meanwhile
    log = {e["user_hash"]: e["outcome"] for e in state.erasure_log()}
    assert log == {creator_hash("u1"): "erased", creator_hash("u3"): "failed"}
    rep = steps.report(run, out, purged, store)
    assert (rep["erased"], rep["failed"], rep["ok"]) == (1, 1, False)
    saved = store.run_reports("creator_offboard")[0]
    assert saved["run_id"] == "r3" and not saved["ok"] and "rate limited" in saved["text"]
    assert "u3" not in saved["text"]  # failures are named by hash prefix in the stored text


class FakeInsider:
    def __init__(self, plan):
        self.plan, self.calls = plan, []

    def __call__(self, request):
        uuid = json.loads(request.content)["identifiers"]["uuid"]
        self.calls.append(uuid)
        step = self.plan.get(uuid, "ok")
        if step == "404":
            return httpx.Response(404, json={"error": "no such user for these identifiers: no data"})
        if step == "429":
            return httpx.Response(
                429, json={"error": "rejected: too many requests"}, headers={"Retry-After": "900"}
            )
        return httpx.Response(200)


def test_erase_operator_resumes_without_resending_settled_users(conn_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    rows = [{"request_key": u, "identifiers": {"uuid": u}} for u in ("u1", "u2", "u3")]
    src, dst = tmp_path / "candidates.jsonl", tmp_path / "results.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fake = FakeInsider({"u2": "404", "u3": "429"})
    monkeypatch.setattr(InsiderDataGovernanceHook, "default_transport", httpx.MockTransport(fake))
    op = InsiderAnonymizeOperator(task_id="erase", input_path=str(src), output_path=str(dst))
    with pytest.raises(AnonymizeIncomplete):
        op.execute({})
    outcomes = {
        r["request_key"]: r["result"]["outcome"] for r in map(json.loads, dst.read_text().splitlines())
    }
    assert outcomes == {"u1": "erased", "u2": "already_gone", "u3": "failed"}
    fake.plan = {}
    assert op.execute({})["erased"] == 2
    assert fake.calls.count("u1") == 1 and fake.calls.count("u2") == 1 and fake.calls.count("u3") == 2


def test_erase_operator_dry_run_sends_nothing(conn_env, monkeypatch, tmp_path):
    src, dst = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    src.write_text(json.dumps({"request_key": "u1", "identifiers": {"uuid": "u1"}}) + "\n")
    fake = FakeInsider({})
    monkeypatch.setattr(InsiderDataGovernanceHook, "default_transport", httpx.MockTransport(fake))
    out = InsiderAnonymizeOperator(
        task_id="erase", input_path=str(src), output_path=str(dst), dry_run="True"
    ).execute({})
    assert out["would_erase"] == 1 and fake.calls == []


def _erase_while_a_sync_holds(monkeypatch, tmp_path, **op_kwargs):
    """u1 is claimed by a live creator_sync upsert (as send.py claims a chunk before sending it)."""
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    store = StateStore()
    assert store.claim("scheduled__sync", ["u1"], 600) == {"u1"}
    src, dst = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    src.write_text(
        "".join(json.dumps({"request_key": u, "identifiers": {"uuid": u}}) + "\n" for u in ("u1", "u2"))
    )
    fake = FakeInsider({})
    monkeypatch.setattr(InsiderDataGovernanceHook, "default_transport", httpx.MockTransport(fake))
    op = InsiderAnonymizeOperator(task_id="erase", input_path=str(src), output_path=str(dst), **op_kwargs)
    return store, op, fake


def test_erase_waits_for_a_sync_that_holds_the_creator(conn_env, monkeypatch, tmp_path):
    store, op, fake = _erase_while_a_sync_holds(monkeypatch, tmp_path)
    with pytest.raises(AnonymizeIncomplete):
        op.execute({"run_id": "manual__1"})
    assert fake.calls == ["u2"]  # u1 untouched while the sync may still upsert it
    assert store.live_claim_runs() == {"scheduled__sync"}  # the erase released its own claims

    store.release_claims("scheduled__sync")  # the sync finished
    assert op.execute({"run_id": "manual__1"})["erased"] == 2
    assert fake.calls == ["u2", "u1"]


def test_without_the_claim_the_erase_runs_under_a_live_sync(conn_env, monkeypatch, tmp_path):
    """The guard switched off: u1 is erased while a sync holds it (its upsert could land afterwards)."""
    _, op, fake = _erase_while_a_sync_holds(monkeypatch, tmp_path, claims=False)
    assert op.execute({"run_id": "manual__1"})["erased"] == 2
    assert "u1" in fake.calls
