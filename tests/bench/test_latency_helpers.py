"""Pure parts of the scale and webhook-latency sections: percentiles, the change schedule, their targets."""

from __future__ import annotations

import itertools

import pytest

from devtools.bench.results import TARGETS, build_results, percentile
from devtools.bench.webhook_latency import change_schedule, median_task_durations


def test_percentile_interpolates_between_closest_ranks():
    values = [10.0, 40.0, 20.0, 30.0]  # unsorted on purpose
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_change_schedule_is_one_percent_an_hour_evenly_spread():
    offsets = change_schedule(100_000, 0.01, 300)
    assert len(offsets) == 83  # 100,000 x 1 % / h x 300 s / 3,600 s
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(offsets)}
    assert gaps == {round(300 / 83, 6)}
    assert 0 < offsets[0] < offsets[-1] < 300


def test_compression_gives_a_smaller_fleet_the_full_fleets_absolute_rate():
    assert change_schedule(10_000, 0.01, 300, compression=10) == change_schedule(100_000, 0.01, 300)
    assert len(change_schedule(10_000, 0.01, 300)) == 8


def test_change_schedule_refuses_a_window_without_changes():
    with pytest.raises(ValueError, match="no change"):
        change_schedule(100, 0.01, 60)
    with pytest.raises(ValueError):
        change_schedule(100_000, 0.01, 0)


@pytest.mark.parametrize(
    "key,good,bad",
    [("e2e_100k_peak_rss_mb", 1024, 1025.5), ("webhook_to_insider_p95_s", 60, 61.2)],
)
def test_scale_and_latency_targets(key, good, bad):
    target = next(t for t in TARGETS if t.key == key)
    assert target.check(build_results({key: good})) is True
    assert target.check(build_results({key: bad})) is False
    assert target.check(build_results({})) is None


def test_median_task_durations_groups_mapped_instances_and_skips_unfinished():
    runs = [
        {"transform": {"duration": 4.0}, "fetch_account_shard[0]": {"duration": 10.0}},
        {"transform": {"duration": 8.0}, "fetch_account_shard[1]": {"duration": 20.0}},
        {"transform": {"duration": None}, "fetch_account_shard[0]": {"duration": 30.0}},
    ]
    assert median_task_durations(runs) == {"fetch_account_shard[*]": 20.0, "transform": 6.0}
