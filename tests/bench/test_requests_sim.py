"""The request-count simulation counts requests the planner's reads really make against the fake."""

from __future__ import annotations

import pytest

from creator_sync.sync import plan
from devtools.bench import requests_sim
from devtools.bench.results import TARGETS, build_results


@pytest.fixture(scope="module")
def fleet():
    return requests_sim.Fleet(20_000)


def test_fleet_has_the_sandbox_proportions(fleet):
    assert 1.55 <= fleet.accounts / fleet.n <= 1.75
    assert 0.25 <= fleet.income.mean() <= 0.29


def test_hourly_run_is_a_small_share_of_a_full_run_and_grows_with_the_change(fleet):
    one = requests_sim.hourly_run(fleet, 0.005)["requests"]
    two = requests_sim.hourly_run(fleet, 0.01)["requests"]
    full = requests_sim.full_run(fleet)["requests"]
    assert one < full / 10
    # each extra changed creator costs about one profile request plus its share of the searches (below
    # the point where reading the whole profiles list is cheaper: 331 pages here)
    extra = two - one
    assert 0.9 * 100 <= extra <= 1.5 * 100


def test_every_webhook_item_is_fetched_once(fleet):
    payloads = requests_sim.hourly_webhooks(fleet, 0.01, hour=3)
    items = {i for p in payloads for i in p["data"].get("items", ())}
    changes = plan.changes_from_payloads(payloads, fleet.snapshot().known_users)
    reads = plan.plan_hourly(
        fleet.snapshot(), changes, requests_sim.START, requests_sim.START + requests_sim.HOUR, 3
    )
    searched = [i for r in reads if r.kind == "search" for i in r.ids]
    assert sorted(searched) == sorted(items)


def test_backfill_of_30_days_costs_about_one_full_sync(fleet):
    ratio = requests_sim.backfill_run(fleet, 30)["requests"] / requests_sim.full_run(fleet)["requests"]
    assert 0.9 <= ratio <= 2


def test_a_planner_that_reads_the_fleet_every_hour_is_caught(fleet, monkeypatch):
    """The guard: the figure comes from executing the plan, so a regression in the planner shows up."""
    good = requests_sim.hourly_run(fleet, 0.01)["requests"]
    monkeypatch.setattr(
        plan, "plan_hourly", lambda snapshot, changes, start, end, hour: plan.plan_full(snapshot, start, end)
    )
    bad = requests_sim.hourly_run(fleet, 0.01)["requests"]
    assert bad > 10 * good


def test_simulate_produces_the_bench_keys_and_verdicts(monkeypatch):
    monkeypatch.setattr(requests_sim, "SIZES", {"10k": 10_000, "100k": 20_000, "1m": 30_000})
    measured = requests_sim.simulate()
    results = build_results(measured)
    for key in (
        "insightiq_requests_per_hourly_run_10k",
        "insightiq_requests_per_hourly_run_100k",
        "insightiq_requests_per_hourly_run_1m",
        "backfill_30d_requests_ratio_sim",
    ):
        assert isinstance(results[key], int | float) and results[key] > 0
    verdicts = {t.key: t.check(results) for t in TARGETS}
    assert verdicts["insightiq_requests_per_hourly_run_100k"] is True
    assert verdicts["backfill_30d_requests_ratio_sim"] is True
    assert build_results({"insightiq_requests_per_hourly_run_1m": 30_000})[
        "insightiq_requests_per_hourly_run_1m"
    ]
    missed = {t.key: t.check({"insightiq_requests_per_hourly_run_1m": 30_000}) for t in TARGETS}
    assert missed["insightiq_requests_per_hourly_run_1m"] is False


def test_the_fake_refuses_a_search_of_more_than_100_ids(fleet):
    fake = requests_sim.CountingFake(fleet)
    with pytest.raises(ValueError, match=r"1\.\.100"):
        fake(plan.Read("search", "contents", "changed", ids=tuple(str(i) for i in range(101))), 0, 100)


def test_payouts_cost_the_weekly_sweep_slice_and_the_webhook_searches_not_the_fleet(fleet):
    run = requests_sim.hourly_run(fleet, 0.01, hour=5)
    payloads = requests_sim.hourly_webhooks(fleet, 0.01, hour=5)
    announced = {i for p in payloads if p["event"] == "PAYOUTS.ADDED" for i in p["data"]["items"]}
    due = -(-int(fleet.income.sum()) // plan.INCOME_SWEEP_HOURS)
    searches = -(-len(announced) // plan.SEARCH_MAX_IDS)
    assert announced and 0 < run["by_resource"]["social_payouts"] <= due + searches
    assert run["by_resource"]["social_payouts"] * 50 < int(fleet.income.sum())  # not every income account


def test_the_targeted_runs_engagement_window_read_costs_pages_only_past_100_items(fleet, monkeypatch):
    """A targeted run reads each named account's contents over the engagement window (so CONTENTS.UPDATED
    refreshes the engagement attributes): one request per account, as a read of its interval, until an
    account has 100 items in the window; then one more page per 100 items."""
    usual = requests_sim.targeted_contents(fleet, 0.01)
    assert usual["window"] == usual["interval"] >= usual["accounts"] > 0
    assert usual["extra"] == 0
    monkeypatch.setattr(requests_sim, "CONTENTS_PER_ACCOUNT_DAY", 5.0)  # 150 items in 30 days
    busy = requests_sim.targeted_contents(fleet, 0.01)
    assert busy["window"] - busy["interval"] == busy["extra"] > 0.9 * busy["accounts"]


def test_history_reads_each_new_account_once_in_a_few_requests(fleet):
    """creator_sync_history's plan executed against the fake: per account one read and its jobs, the
    directory once, each list once per window (the sandbox's list sizes fit one page per window)."""
    run = requests_sim.history_run(fleet, 20)
    windows = run["windows"]
    assert run["accounts"] == 20 and windows >= 1
    assert 20 * (2 + 3 + windows) <= run["requests"] <= 20 * (4 + 3 + 3 * windows)


def test_history_in_daily_windows_would_be_caught(fleet, monkeypatch):
    """The guard: the figure comes from executing the windows, so reading the past a day at a time shows up
    as a cost many times larger."""
    good = requests_sim.history_run(fleet, 20)["requests"]
    monkeypatch.setattr(requests_sim, "HISTORY_WINDOW_DAYS", 1)
    assert requests_sim.history_run(fleet, 20)["requests"] > 50 * good


def test_the_hourly_figure_includes_the_history_run(monkeypatch):
    monkeypatch.setattr(requests_sim, "SIZES", {"10k": 10_000, "100k": 20_000, "1m": 30_000})
    measured = requests_sim.simulate()
    for label in requests_sim.SIZES:
        assert measured[f"insightiq_requests_per_hourly_run_{label}"] == (
            measured[f"insightiq_requests_per_hourly_run_{label}_without_history"]
            + measured[f"insightiq_requests_history_per_hour_{label}"]
        )
        assert measured[f"insightiq_requests_history_per_hour_{label}"] > 0
