"""The Insider sandbox for the exactly-once tests: a Profile API quota that probes never exhaust, short
leases and probe waits (real time: kills leave leases that must run out), a fresh state store per test."""

from __future__ import annotations

import pytest

from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, PROBE_ROUNDS_ENV, SETTLE_ENV
from creator_sync.store import StateStore

from .harness import Dying, Insider

LEASE_S = 1.0


@pytest.fixture(scope="module")
def sandbox():
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=10, seed=7, extra_args=["--insider-profile-quota", "1000000"]) as sb:
        yield sb


@pytest.fixture
def insider(sandbox_env, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", str(LEASE_S))
    monkeypatch.setenv(SETTLE_ENV, "0.05")
    monkeypatch.setenv(PROBE_ROUNDS_ENV, "3")
    monkeypatch.setenv(PROBE_BACKOFF_ENV, "0.2")
    sandbox_env.configure(
        "insider", {"ingestion_lag_seconds": 0, "reject_uuids": [], "complete_after_disconnect": False}
    )
    sandbox_env.reset("insider")
    return Insider(sandbox_env)


@pytest.fixture
def state(tmp_path) -> Dying:
    return Dying(StateStore(f"sqlite:///{tmp_path / 'state.db'}"))
