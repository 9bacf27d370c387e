"""insider_profile_audit against the Insider sandbox: matching data, a dropped attribute, quota budget."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from creator_sync.audit.profile_audit import audit_run, audit_users, compare, profile_request, sample_users
from devtools.insider_load import upsert_all

EVENT_TS = "2025-03-01T10:00:00Z"


def users(n=4):
    return [
        {
            "identifiers": {"uuid": f"cs-audit-{i}", "email": f"creator{i}@example.com"},
            "attributes": {"name": f"Creator {i}", "surname": "Test", "custom": {"follower_count": 100 + i}},
            "events": [
                {
                    "event_name": "content_published",
                    "timestamp": EVENT_TS,
                    "event_params": {"custom": {"content_id": f"content-{i}", "like_count": i}},
                }
            ],
        }
        for i in range(n)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_profile_request_asks_for_what_was_sent():
    request = profile_request(users(1)[0])
    assert request["identifiers"] == {"uuid": "cs-audit-0"}
    assert request["attributes"] == ["name", "surname", "c_follower_count"]
    assert request["events"]["wanted"] == [
        {"event_name": "content_published", "params": ["content_id", "like_count"]}
    ]


def test_compare_names_each_kind_of_mismatch():
    user = users(1)[0]
    user["attributes"]["tags"] = ["a", "b"]
    got = {"name": "Creator 0", "c_follower_count": 999, "tags": ["a", "b", "c"]}
    assert compare(user, got, {"content_published": []}) == [
        {"kind": "attribute_different", "attribute": "custom.follower_count", "sent": 100, "profile": 999},
        {"kind": "attribute_missing", "attribute": "surname", "sent": "Test"},
        {"kind": "event_missing", "event": "content_published", "timestamp": EVENT_TS},
    ]


def test_sample_is_reproducible_and_bounded(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", users(50))
    first = sample_users(path, 5, seed="run-1")
    assert len(first) == 5
    assert first == sample_users(f"file://{path}", 5, seed="run-1")


@pytest.fixture(scope="module")
def sandbox():
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=20, seed=5) as sb:
        yield sb


@pytest.fixture
def insider(sandbox, monkeypatch):
    from creator_sync.hooks.insider import InsiderHook
    from devtools.connections import connection_envs, sandbox_hosts

    sandbox.reset()
    sandbox.configure("insider", {"drop_attributes": []})
    for key, value in connection_envs(sandbox_hosts(sandbox)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    hook = InsiderHook()
    yield hook
    hook.close()
    sandbox.configure("insider", {"drop_attributes": []})


@pytest.mark.slow
def test_matching_data_gives_zero_mismatches(insider, tmp_path):
    sent = users()
    assert upsert_all(insider, sent)[0].users_sent == len(sent)
    extra = {"run_id": "sync-1", "users_path": write_jsonl(tmp_path / "users.jsonl", sent), "sent": len(sent)}
    events = {"creator_sync_insider_users": [SimpleNamespace(extra=extra)]}
    params = {"identifier": None, "sample_size": 10, "max_quota_units": 500}
    summary = audit_run(insider, params, events, "audit-run")
    assert summary["checked"] == len(sent)
    assert summary["mismatch_count"] == 0, summary
    assert summary["quota_units_used"] > 0


@pytest.mark.slow
def test_dropped_attribute_is_reported_exactly(insider, sandbox):
    sandbox.configure("insider", {"drop_attributes": ["name"]})
    sent = users(1)
    upsert_all(insider, sent)
    report = audit_users(insider, sent)
    assert report["mismatches"] == [
        {
            "identifiers": {"uuid": "cs-audit-0"},
            "mismatches": [{"kind": "attribute_missing", "attribute": "name", "sent": "Creator 0"}],
        }
    ]


@pytest.mark.slow
def test_quota_budget_stops_the_audit(insider):
    sent = users(4)
    upsert_all(insider, sent)
    report = audit_users(insider, sent, max_quota_units=3.0)
    assert report["checked"] < 4
    assert report["skipped_for_quota"] == 4 - report["checked"]
    assert report["quota_units_used"] <= 3.0


@pytest.mark.slow
def test_manual_lookup_prints_one_profile(insider, caplog):
    upsert_all(insider, users(1))
    params = {"identifier": "cs-audit-0", "identifier_type": "uuid", "attributes": ["name", "surname"]}
    with caplog.at_level("INFO"):
        result = audit_run(insider, params)
    assert result["found"] is True
    assert "Creator 0" in caplog.text
