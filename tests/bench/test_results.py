"""The benchmark's pure parts: the rate-limit bound, ratios, the flat result file, the target verdicts."""

from __future__ import annotations

import json
import math

import pytest

from devtools.bench.e2e import raised_config_dir
from devtools.bench.fetch import pages_for, sandbox_summary
from devtools.bench.local import last_json_line
from devtools.bench.results import (
    REQUIRED_KEYS,
    TARGETS,
    bound_ratio,
    build_results,
    rate_limit_bound_s,
    render_table,
    upsert_ratio,
    utilisation,
    write_results,
)

SPEC_KEYS = {
    "fetch_utilisation",
    "fetch_utilisation_split",
    "fetch_over_limit_windows",
    "fetch_429s",
    "fetch_requests_into_full_window",
    "fetch_utilisation_baseline",
    "fetch_429s_baseline",
    "upsert_request_ratio",
    "transform_rows_per_s",
    "transform_rows_peak_rss_mb_100k",
    "transform_rows_peak_rss_mb_1m",
    "transform_peak_rss_mb",
    "transform_rss_growth_10x",
    "transform_peak_rss_mb_1m",
    "e2e_bound_ratio",
    "insightiq_requests_per_creator",
    "incremental_send_ratio",
    "dag_parse_s_max",
    "sandbox_start_s_100k",
}


def test_required_keys_cover_the_spec():
    assert set(REQUIRED_KEYS) >= SPEC_KEYS


def test_bound_is_insightiq_over_rate_plus_upserts_over_rate_per_second():
    # 1000 InsightIQ requests at 50/s = 20 s; 25 upserts at 25,000/60 s = 0.06 s
    assert rate_limit_bound_s(1000, 50, 25, 25_000, 60) == pytest.approx(20 + 25 * 60 / 25_000)
    assert rate_limit_bound_s(0, 10, 0, 25_000, 60) == 0
    assert rate_limit_bound_s(10, 10, 0, 25_000, 60) == pytest.approx(1.0)


def test_bound_rejects_non_positive_rates():
    with pytest.raises(ValueError):
        rate_limit_bound_s(1, 0, 1, 25_000, 60)
    with pytest.raises(ValueError):
        rate_limit_bound_s(1, 10, 1, 25_000, 0)


def test_bound_ratio():
    assert bound_ratio(30.0, 20.0) == pytest.approx(1.5)
    assert bound_ratio(5.0, 0.0) is None


def test_upsert_ratio_counts_against_ceil_users_over_1000():
    assert upsert_ratio(25, 25_000) == 1.0
    assert upsert_ratio(26, 25_001) == 1.0
    assert upsert_ratio(50, 25_000) == 2.0
    with pytest.raises(ValueError):
        upsert_ratio(1, 0)


def test_utilisation():
    assert utilisation(970, 100.0, 10) == pytest.approx(0.97)
    with pytest.raises(ValueError):
        utilisation(1, 0, 10)


def test_pages_for_needs_one_more_page_when_last_is_full():
    assert pages_for(0) == 1
    assert pages_for(99) == 1
    assert pages_for(100) == 2
    assert pages_for(8454) == 85


def test_results_are_flat_with_every_required_key(tmp_path):
    measured = {
        "fetch_utilisation": 0.991,
        "fetch_over_limit_windows": 0,
        "fetch_429s": 0,
        "fetch_requests_into_full_window": 0,
        "fetch_utilisation_baseline": 0.8,
        "upsert_request_ratio": 1.0,
        "nested_detail": {"a": [1, 2]},
        "nan_value": math.nan,
    }
    results = build_results(measured, {"machine": "2 cpu", "quick": True, "timestamp": "t"})
    assert set(REQUIRED_KEYS) <= set(results)
    assert results["transform_rows_per_s"] is None  # not measured -> null, never missing
    assert results["nan_value"] is None
    assert json.loads(results["nested_detail"]) == {"a": [1, 2]}
    assert results["quick"] is True
    path = tmp_path / "bench-results.json"
    write_results(path, results)
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    assert not any(isinstance(v, dict | list) for v in loaded.values())
    assert json.loads(loaded["targets_met"])["fetch_utilisation"] is True


def test_write_results_refuses_missing_keys_or_nesting(tmp_path):
    with pytest.raises(ValueError):
        write_results(tmp_path / "r.json", {"fetch_utilisation": 1.0})
    nested = dict.fromkeys(REQUIRED_KEYS) | {"x": {"y": 1}}
    with pytest.raises(ValueError):
        write_results(tmp_path / "r.json", nested)


CLEAN = {"fetch_over_limit_windows": 0, "fetch_429s": 0, "fetch_requests_into_full_window": 0}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"fetch_utilisation": 0.99, **CLEAN}, True),
        ({"fetch_utilisation": 0.989, **CLEAN}, False),
        ({"fetch_utilisation": 0.995, **CLEAN, "fetch_over_limit_windows": 1}, False),
        ({"fetch_utilisation": 0.995, **CLEAN, "fetch_429s": 2}, False),
        ({"fetch_utilisation": 0.995, **CLEAN, "fetch_requests_into_full_window": 1}, False),
        ({"fetch_utilisation": 0.995, "fetch_over_limit_windows": 0, "fetch_429s": 0}, False),
        ({"fetch_utilisation": 0.995, **CLEAN, "fetch_utilisation_baseline": 0.997}, False),
        ({}, None),
    ],
)
def test_fetch_target(values, expected):
    target = next(t for t in TARGETS if t.key == "fetch_utilisation")
    assert target.check(values) is expected


def test_other_targets():
    check = {t.key: t.check for t in TARGETS}
    assert check["upsert_request_ratio"]({"upsert_request_ratio": 1.0}) is True
    assert check["upsert_request_ratio"]({"upsert_request_ratio": 1.04}) is False
    assert check["transform_rows_per_s"]({"transform_rows_per_s": 150_000}) is False
    flat = {"transform_rows_peak_rss_mb_100k": 200, "transform_rows_peak_rss_mb_1m": 290}
    assert check["transform_rows_peak_rss_mb_1m"](flat) is True
    assert check["transform_rows_peak_rss_mb_1m"](flat | {"transform_rows_peak_rss_mb_1m": 400}) is False
    assert check["transform_peak_rss_mb_1m"]({"transform_peak_rss_mb_1m": 562}) is True
    assert check["transform_peak_rss_mb_1m"]({"transform_peak_rss_mb_1m": 1100}) is False
    assert check["transform_rss_growth_10x"]({"transform_rss_growth_10x": 1.17}) is True
    assert check["transform_rss_growth_10x"]({"transform_rss_growth_10x": 1.37}) is False
    assert check["e2e_bound_ratio"]({"e2e_bound_ratio": 1.1}) is True
    assert check["e2e_bound_ratio"]({"e2e_bound_ratio": 1.11}) is False
    assert check["incremental_send_ratio"]({"incremental_send_ratio": 0.05}) is False
    assert check["dag_parse_s_max"]({"dag_parse_s_max": 0.3}) is False
    assert check["dag_parse_s_max"]({"dag_parse_s_max": 0.01}) is True


def test_table_lists_every_key_and_marks_targets():
    results = build_results({"upsert_request_ratio": 1.0, "e2e_bound_ratio": 2.5})
    table = render_table(results)
    for key in REQUIRED_KEYS:
        assert key in table
    assert "| met" in table and "MISSED" in table and "n/a" in table


def test_sandbox_summary_and_json_line_parsing():
    limits = {"requests": {"rate": 10, "window": 1, "max_in_window": 10, "attempted_max_in_window": 18}}
    stats = {
        "service": "insightiq",
        "requests_by_status": {"200": 85, "429": 8},
        "windows_over_limit": 0,  # accepted only: cannot exceed the limit, so not the evidence
        "attempted_windows_over_limit": 1,
        "rate_limited_429s": 8,
        "injected_429s": 3,
        "limits": {
            "requests": {
                **limits["requests"],
                "attempted_windows_over_limit": 1,
                "attempted_over_limit": 8,
                "attempted_max_in_sliding_window": 19,
            }
        },
        "send_to_arrival_ms": {"count": 93, "spread": 4.0, "drop": 3.5},
    }
    summary = sandbox_summary(stats)
    assert {k: v for k, v in summary.items() if k != "limit_violations"} == {
        "accepted": 85,
        "by_status": {"200": 85, "429": 8},
        "windows_over_limit": 1,
        "rate_limited_429s": 8,
        "max_in_window": 18,
        "requests_into_full_window": 8,
        "max_in_any_window": 19,
        "send_to_arrival_ms": {"count": 93, "spread": 4.0, "drop": 3.5},
    }
    assert len(summary["limit_violations"]) == 2
    assert last_json_line('noise\n{"rows": 5}\ntrailer\n') == {"rows": 5}
    with pytest.raises(ValueError):
        last_json_line("nothing here")


def test_raised_config_dir_changes_only_the_insightiq_rate(tmp_path):
    target = raised_config_dir(tmp_path / "config", 50)
    pools = json.loads((target / "pools.json").read_text())
    assert pools["insightiq_api"]["rate_limit"]["requests"] == 50
    assert pools["insightiq_api"]["slots"] == 4
    assert pools["insider_upsert"]["rate_limit"]["requests"] == 25000
    assert (target / "insider_mapping.yaml").exists()


def test_task_timeline_and_phase_split():
    from devtools.bench.e2e import phase_split
    from devtools.bench.results import task_timeline

    tasks = {
        "transform": {
            "queued_when": "2026-01-01T00:01:40.5Z",
            "start_date": "2026-01-01T00:01:41Z",
            "end_date": "2026-01-01T00:01:43.5Z",
        },
        "fetch_creators": {
            "queued_when": "2026-01-01T00:00:00.2Z",
            "start_date": "2026-01-01T00:00:01Z",
            "end_date": "2026-01-01T00:00:30Z",
        },
        "fetch_account_shard[1]": {
            "queued_when": "2026-01-01T00:00:00.2Z",
            "start_date": "2026-01-01T00:00:31Z",
            "end_date": "2026-01-01T00:01:40Z",
        },
        "publish": {"queued_when": None, "start_date": None, "end_date": None},
    }
    timeline = task_timeline(tasks, "2026-01-01T00:00:00Z")
    assert list(timeline) == ["fetch_creators", "fetch_account_shard[1]", "transform", "publish"]
    assert timeline["transform"] == {
        "queued": 100.5,
        "start": 101.0,
        "end": 103.5,
        "start_latency": 0.5,
        "run": 2.5,
    }
    assert timeline["publish"]["run"] is None
    assert phase_split(timeline, 110.0) == {"fetch_phase_s": 100.0, "after_fetch_s": 10.0}
    assert phase_split({}, 5.0) == {"fetch_phase_s": None, "after_fetch_s": None}


def test_the_million_creator_run_is_computed_from_measured_parts():
    from devtools.bench.results import million_creator_run

    parts = {
        "insightiq_requests_per_hourly_run_1m": 16_052,
        "transform_peak_rss_mb_1m": 562,
        "state_state_s_1m_sqlite": 160.5,
    }
    run = million_creator_run(parts)
    assert run["run_1m_insightiq_requests"] == 16_052 and run["run_1m_upsert_requests_max"] == 1000
    assert run["run_1m_bound_s"] == pytest.approx(1605.2 + 2.4, abs=0.1)
    assert run["run_1m_transform_peak_rss_mb"] == 562
    assert run["run_1m_state_share_sqlite"] == pytest.approx(160.5 / 1607.6, abs=0.001)
    assert run["run_1m_state_s_postgresql"] is None and run["run_1m_state_share_postgresql"] is None
    assert million_creator_run({})["run_1m_transform_peak_rss_mb"] is None
