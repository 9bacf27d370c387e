"""Account events end to end at pipeline level, against the sandboxes over HTTP: a full scheduled run writes
the directory snapshot (the fleet's existing connections are not news), then the sandbox disconnects one
account and reconnects it, each change followed by a targeted run of the account (the run an
ACCOUNTS.CONNECTED or SESSION.EXPIRED webhook starts; for the disconnect it stands in for the account's next
read, as ACCOUNTS.DISCONNECTED starts no run). Insider ends
with exactly one account_disconnected and one account_connected for the creator, a run over the same interval
again sends nothing new, and a session expiry after that is one session_expired."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore

from .factories import SANDBOX_NOW
from .test_incremental_fetch import scheduled, sync

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget", "local_sync_store")]

RATE = 200  # requests/s: the full run the snapshot comes from takes seconds
ACCOUNT_EVENTS = {"account_connected", "account_disconnected", "session_expired"}
_RUNS = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox():
    """60 creators whose data set ends at SANDBOX_NOW (in the past): the only account changes of this
    hour are the ones the test makes. Each test's full sync reads every account (about 40 ms a request at
    the sandbox); 60 still hold a connected creator to flip and a valid one with synced income."""
    from devtools.sandbox.launcher import SandboxServers

    args = ["--insightiq-rate", str(RATE), "--now", SANDBOX_NOW]
    with SandboxServers(creators=60, seed=7, extra_args=args) as sb:
        yield sb


@pytest.fixture(autouse=True)
def raised_rate(monkeypatch, tmp_path):
    from devtools.bench.e2e import raised_config_dir

    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(tmp_path / "config", RATE)))


def targeted(hour: datetime, account_id: str) -> SyncRun:
    """The run an account webhook starts (the receiver's run covers the last complete hour; any hour does)."""
    return SyncRun(
        f"insightiq_webhook__{next(_RUNS)}", hour, hour + timedelta(hours=1), False, False, (account_id,)
    )


def account_events(result: dict, user_id: str) -> list[str]:
    events = result["users"].get(user_id, {}).get("events", [])
    return [e["event_name"] for e in events if e["event_name"] in ACCOUNT_EVENTS]


def flip(sandbox, user_id: str) -> tuple[str, dict]:
    body = httpx.post(
        f"{sandbox.insightiq_url}/_sandbox/mutate",
        json={"user_ids": [user_id], "kinds": ["accounts"]},
        timeout=60,
    ).json()
    return body["items"]["accounts"][0], body["events"]


def stored_events(sandbox, user_id: str) -> list[dict]:
    found = httpx.post(f"{sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": [user_id]}, timeout=30)
    user = found.json()["data"][user_id]
    return [e for e in user["events"] if e["event_name"] in ACCOUNT_EVENTS]


def test_a_disconnect_and_a_reconnect_reach_insider_once_each(sandbox_env):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = sync(scheduled(hour - timedelta(hours=1)))
    assert not [u for u in first["users"] if account_events(first, u)]  # existing connections: no events
    accounts = SnapshotStore().read(SnapshotStore().current(), "accounts").to_pylist()
    connected = {a["user.id"] for a in accounts if a["status"] == "CONNECTED"}
    lapsed = {a["user.id"] for a in accounts if a["status"] != "CONNECTED"}
    user_id = next(u for u in sorted(first["users"]) if u in connected and u not in lapsed)

    account_id, announced = flip(sandbox_env, user_id)
    assert announced == {"ACCOUNTS.DISCONNECTED": 1}
    off = sync(targeted(hour, account_id))
    assert account_events(off, user_id) == ["account_disconnected"]
    (event,) = [e for e in off["users"][user_id]["events"] if e["event_name"] == "account_disconnected"]
    assert event["event_params"]["custom"]["account_id"] == account_id
    assert event["event_params"]["custom"]["platform"]

    assert flip(sandbox_env, user_id) == (account_id, {"ACCOUNTS.CONNECTED": 1})
    on = sync(targeted(hour, account_id))
    assert account_events(on, user_id) == ["account_connected"]
    assert on["sent"]["events_sent"] >= 1

    again = sync(targeted(hour, account_id))  # the same interval once more: the same event, acknowledged
    assert account_events(again, user_id) == ["account_connected"]
    assert again["sent"]["events_sent"] == 0

    expiry = httpx.post(
        f"{sandbox_env.insightiq_url}/_sandbox/mutate",
        json={"user_ids": [user_id], "kinds": ["sessions"]},
        timeout=60,
    ).json()
    assert expiry["events"] == {"SESSION.EXPIRED": 1}
    lapsed_run = sync(targeted(hour, account_id))
    assert account_events(lapsed_run, user_id) == ["session_expired"]

    stored = stored_events(sandbox_env, user_id)
    names = sorted(e["event_name"] for e in stored)
    assert names == ["account_connected", "account_disconnected", "session_expired"], json.dumps(stored)
    (disconnected,) = [e for e in stored if e["event_name"] == "account_disconnected"]
    (connected_event,) = [e for e in stored if e["event_name"] == "account_connected"]
    assert disconnected["timestamp"] <= connected_event["timestamp"]


def test_a_payout_webhooks_targeted_run_sends_payout_received_once(sandbox_env):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sync(scheduled(hour - timedelta(hours=1)))
    accounts = SnapshotStore().read(SnapshotStore().current(), "accounts").to_pylist()
    invalid = {
        r["user_id"]
        for r in httpx.get(f"{sandbox_env.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    }
    payee = next(a for a in accounts if a["data.income.status"] == "SYNCED" and a["user.id"] not in invalid)
    body = httpx.post(
        f"{sandbox_env.insightiq_url}/_sandbox/mutate",
        json={"user_ids": [payee["user.id"]], "kinds": ["payouts"]},
        timeout=60,
    ).json()
    mine = set(body["items"]["social_payouts"])
    assert body["events"]["PAYOUTS.ADDED"] >= 1 and mine

    paid = sync(targeted(hour, payee["id"]))
    events = [e for e in paid["users"][payee["user.id"]]["events"] if e["event_name"] == "payout_received"]
    got = {e["event_params"]["custom"]["payout_id"] for e in events}
    found = httpx.post(
        f"{sandbox_env.insightiq_url}/v1/social/income/payouts/search",
        json={"ids": sorted(mine)},
        auth=("sandbox-client-id", "sandbox-client-secret"),
        timeout=30,
    ).json()["data"]
    assert got == {p["id"] for p in found if p["account"]["id"] == payee["id"]} and got  # this account's
    assert all(e["event_params"]["currency"] and e["event_params"]["custom"]["amount"] > 0 for e in events)
    assert paid["stats"].events_by_name.get("payout_received", 0) == len(events)

    again = sync(targeted(hour, payee["id"]))
    assert again["sent"]["events_sent"] == 0
