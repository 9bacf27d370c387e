"""The request budget when InsightIQ's contents are read per account (creator_sync.sync.contents_read): the
weekly per-account contents sweep keeps the 1M-creator hourly run within 28,800 requests."""

from __future__ import annotations

import pytest

from creator_sync.sync import plan
from devtools.bench import requests_sim

BUDGET_1M = 28_800


@pytest.fixture(scope="module")
def fleet_1m():
    return requests_sim.Fleet(1_000_000)


def test_per_account_contents_keep_the_1m_hourly_run_within_budget(fleet_1m):
    run = requests_sim.hourly_run(fleet_1m, 0.01, contents_per_account=True)
    assert run["requests"] <= BUDGET_1M, run
    engaged = int(fleet_1m.engagement.sum())
    # the sweep reads 1/168 of the accounts with contents each hour, plus the webhooks' bulk searches
    assert engaged / plan.CONTENTS_SWEEP_HOURS <= run["by_resource"]["contents"] <= engaged / 100


def test_every_contents_account_is_swept_once_a_week(fleet_1m):
    snapshot = fleet_1m.snapshot()
    seen = 0
    for hour in range(plan.CONTENTS_SWEEP_HOURS):
        due = plan._due(snapshot.contents_accounts, hour, plan.CONTENTS_SWEEP_HOURS)
        seen += len(due)
    assert seen == len(snapshot.contents_accounts)


def test_the_guard_fails_when_every_account_is_read_every_hour(fleet_1m, monkeypatch):
    """The guard switched off (a per-account read of every account each hour): far over the budget."""
    monkeypatch.setattr(plan, "CONTENTS_SWEEP_HOURS", 1)
    run = requests_sim.hourly_run(fleet_1m, 0.01, contents_per_account=True)
    assert run["requests"] > 10 * BUDGET_1M


def test_simulate_reports_the_per_account_figure(monkeypatch):
    monkeypatch.setattr(requests_sim, "SIZES", {"10k": 10_000, "100k": 20_000, "1m": 30_000})
    out = requests_sim.simulate()
    assert out["insightiq_requests_per_hourly_run_1m_per_account_contents"] > 0
