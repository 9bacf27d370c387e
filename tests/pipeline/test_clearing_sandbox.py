"""Clearing end to end at pipeline level, against the sandboxes over HTTP: a full scheduled run sends a
creator with two connected platforms; the InsightIQ sandbox disconnects one account; the targeted run of
that account (standing in for the account's next read) leaves that platform's attributes out of the upsert
and deletes them at Insider (Delete User Attribute): the sandbox's stored user then lacks them and keeps the
other platform's. With clearing switched off in the mapping (`clear: false`), the stale attributes stay."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from creator_sync.pipeline.mapping import insider_name
from creator_sync.sync.snapshot import SnapshotStore

from .test_account_events_sandbox import RATE, targeted
from .test_incremental_fetch import scheduled, sync

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_rate_budget", "local_sync_store")]

AUTH = ("sandbox-client-id", "sandbox-client-secret")
KEPT = "connection_status"  # clear: false in the mapping: says the platform is not connected


@pytest.fixture(scope="module")
def sandbox():
    """60 creators: each test's full run reads every account (about 40 ms a request at the sandbox); the fleet
    still holds a sent creator with two connected accounts."""
    from devtools.sandbox.launcher import SandboxServers

    from .factories import SANDBOX_NOW

    args = ["--insightiq-rate", str(RATE), "--now", SANDBOX_NOW]
    with SandboxServers(creators=60, seed=11, extra_args=args) as sb:
        yield sb


@pytest.fixture(autouse=True)
def config_dir(monkeypatch, tmp_path):
    from devtools.bench.e2e import raised_config_dir

    target = raised_config_dir(tmp_path / "config", RATE)
    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(target))
    return target


def stored(sandbox, user_id: str) -> dict:
    found = httpx.post(f"{sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": [user_id]}, timeout=30)
    return found.json()["data"][user_id]["attributes"].get("custom", {})


def platform_attributes(custom: dict, platform: str) -> set[str]:
    return {k for k in custom if k.startswith(f"{platform}_") and k != f"{platform}_{KEPT}"}


def two_platform_creator(first: dict) -> tuple[str, dict, dict]:
    """A sent creator with two or more accounts, all CONNECTED: (user id, the account to disconnect,
    another)."""
    accounts = SnapshotStore().read(SnapshotStore().current(), "accounts").to_pylist()
    by_user: dict[str, list[dict]] = {}
    for account in accounts:
        by_user.setdefault(account["user.id"], []).append(account)
    for user_id in sorted(first["users"]):
        mine = by_user.get(user_id, [])
        if len(mine) >= 2 and all(a["status"] == "CONNECTED" for a in mine):
            return user_id, mine[0], mine[1]
    raise AssertionError("the sandbox has no sent creator with two connected accounts")


def disconnect_and_sync(sandbox) -> tuple[str, tuple[str, str], dict, dict]:
    """Full run, then one account of a two-platform creator disconnected and its targeted run: (user id,
    (the disconnected platform, the other platform), Insider's custom attributes before, {"custom": Insider's
    custom attributes after, "run": the targeted run})."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = sync(scheduled(hour - timedelta(hours=1)))
    user_id, gone, other = two_platform_creator(first)
    before = stored(sandbox, user_id)
    off = httpx.post(f"{sandbox.insightiq_url}/v1/accounts/{gone['id']}/disconnect", auth=AUTH, timeout=30)
    assert off.json()["status"] == "NOT_CONNECTED"
    run = sync(targeted(hour, gone["id"]))
    names = insider_name(gone["work_platform.name"]), insider_name(other["work_platform.name"])
    return user_id, names, before, {"custom": stored(sandbox, user_id), "run": run}


def test_a_disconnected_platforms_attributes_are_cleared_and_the_others_remain(sandbox_env):
    _, (gone, other), before, after = disconnect_and_sync(sandbox_env)
    assert platform_attributes(before, gone) and platform_attributes(before, other)  # both were sent
    custom = after["custom"]
    assert platform_attributes(custom, gone) == set(), custom
    assert platform_attributes(before, other) <= platform_attributes(custom, other)  # still there
    assert custom[f"{gone}_{KEPT}"] == "not_connected"
    clear = after["run"]["sent"]["clear"]
    assert clear["users_cleared"] >= 1 and clear["users_failed"] == 0
    assert clear["attributes_cleared"] >= len(platform_attributes(before, gone))


def test_with_clearing_off_the_stale_attributes_stay(sandbox_env, config_dir):
    path = config_dir / "insider_mapping.yaml"
    raw = yaml.safe_load(path.read_text())
    for spec in raw["attributes"]["custom"].values():
        if str(spec.get("reduce", "")).endswith("_per_platform"):
            spec["clear"] = False
    raw["platform_attributes"]["clear"] = False
    path.write_text(yaml.safe_dump(raw, sort_keys=False))

    _, (gone, _), before, after = disconnect_and_sync(sandbox_env)
    assert platform_attributes(before, gone)
    assert platform_attributes(after["custom"], gone) == platform_attributes(before, gone)  # stale, kept
    assert after["run"]["sent"]["clear"]["users"] == 0


def test_a_creator_without_a_connected_account_loses_the_list_and_the_totals(sandbox_env):
    """Every account of a creator disconnected: the targeted run removes connected_platforms and the totals
    over platforms at Insider (clear: true, Delete User Attribute) instead of leaving the last list."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = sync(scheduled(hour - timedelta(hours=1)))
    user_id, one, _ = two_platform_creator(first)
    whole = {"connected_platforms", "total_follower_count", "primary_platform"}
    assert whole <= set(stored(sandbox_env, user_id))
    mine = [a["id"] for a in SnapshotStore().read(SnapshotStore().current(), "accounts").to_pylist()
            if a["user.id"] == user_id]  # fmt: skip
    for account_id in mine:
        off = httpx.post(
            f"{sandbox_env.insightiq_url}/v1/accounts/{account_id}/disconnect", auth=AUTH, timeout=30
        )
        assert off.json()["status"] == "NOT_CONNECTED"
    sync(dataclasses.replace(targeted(hour, mine[0]), account_ids=tuple(mine)))
    custom = stored(sandbox_env, user_id)
    assert not whole & set(custom), custom
    assert custom[f"{insider_name(one['work_platform.name'])}_{KEPT}"] == "not_connected"
