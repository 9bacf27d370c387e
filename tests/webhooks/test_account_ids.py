"""Issue 24: webhook account ids must be InsightIQ ids, and a targeted run names at most
CREATOR_SYNC_MAX_ACCOUNTS_PER_RUN accounts (the coalescer splits a larger burst; a Param with more fails)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from webhook_support import SECRET, FakeTrigger

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.store.engine import now as utcnow
from creator_sync.sync import run_context
from creator_sync.webhooks import coalesce
from creator_sync.webhooks.coalesce import Coalescer
from creator_sync.webhooks.events import MalformedEvent, parse_event
from creator_sync.webhooks.signature import sign


def body(account_id) -> bytes:
    return json.dumps({"id": "e1", "event": "PROFILES.UPDATED", "data": {"account_id": account_id}}).encode()


@pytest.mark.parametrize("account_id", ["../webhooks", "a?x=1", "a/b", "", "é", "x" * 129, 7])
def test_a_webhook_with_a_hostile_account_id_is_400(client, store, account_id):
    raw = body(account_id)
    answer = client.post(
        "/webhooks/insightiq", content=raw, headers={"Webhook-Signatures": sign(raw, SECRET)}
    )
    assert answer.status_code == 400 and "account_id" in answer.text
    assert store.pending() == []
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_a_uuid_account_id_is_accepted():
    assert parse_event(body("6f4f2c1e-2b8a-4c1d-9c3e-0a1b2c3d4e5f")).account_id.startswith("6f4f")


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_burst_is_split_into_runs_of_at_most_the_setting(store, monkeypatch, guard):
    monkeypatch.setenv(run_context.MAX_ACCOUNTS_ENV, "3")
    if guard == "off":
        monkeypatch.setattr(coalesce, "max_accounts_per_run", lambda: 10**9)
    accounts = [f"acc-{i}" for i in range(7)]
    for i, account in enumerate(accounts):
        store.record_delivery(f"e{i}", "PROFILES.UPDATED", account, "sha", queue_account=True)
    trigger = FakeTrigger()
    coalescer = Coalescer(store, trigger, debounce_s=0, background=False)
    later = utcnow() + timedelta(seconds=1)
    while coalescer.flush(now=later, force=True):
        pass
    sizes = sorted(len(a) for a in trigger.runs.values())
    assert sorted(a for run in trigger.runs.values() for a in run) == sorted(accounts)
    assert sizes == ([7] if guard == "off" else [1, 3, 3])
    assert store.pending() == []


def test_a_queued_run_is_extended_only_up_to_the_setting(store, monkeypatch):
    monkeypatch.setenv(run_context.MAX_ACCOUNTS_ENV, "3")
    trigger = FakeTrigger()
    coalescer = Coalescer(store, trigger, debounce_s=0, background=False)
    later = utcnow() + timedelta(seconds=1)
    for i in range(2):
        store.record_delivery(f"a{i}", "PROFILES.UPDATED", f"acc-{i}", "sha", queue_account=True)
    first = coalescer.flush(now=later, force=True)
    for i in range(2, 4):
        store.record_delivery(f"a{i}", "PROFILES.UPDATED", f"acc-{i}", "sha", queue_account=True)
    second = coalescer.flush(now=later, force=True)
    assert first != second and max(len(a) for a in trigger.runs.values()) <= 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([f"a{i}" for i in range(4)], "at most 3"),
        (["ok", "../webhooks"], "invalid id"),
        ("a1,a/b", "invalid id"),
        ({"a": 1}, "must be a list"),
    ],
)
def test_the_account_ids_param_is_checked(monkeypatch, value, message):
    monkeypatch.setenv(run_context.MAX_ACCOUNTS_ENV, "3")
    with pytest.raises(CreatorSyncConfigError, match=message):
        run_context.checked_account_ids(value)


def test_the_setting_and_its_default(monkeypatch):
    assert run_context.max_accounts_per_run({}) == run_context.DEFAULT_MAX_ACCOUNTS == 500
    assert run_context.checked_account_ids(["a1", "a1", "a2"]) == ("a1", "a2")
    for bad in ("0", "many", "-1"):
        with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_MAX_ACCOUNTS_PER_RUN"):
            run_context.max_accounts_per_run({run_context.MAX_ACCOUNTS_ENV: bad})
