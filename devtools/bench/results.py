"""Pure functions of the benchmark: the rate-limit lower bound, the flat result object, targets, the table.

No I/O except ``write_results``; everything here is unit-tested in tests/bench/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# The keys the result file must carry (in this order), whatever happened to the run.
REQUIRED_KEYS: tuple[str, ...] = (
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
    "transform_peak_rss_mb_10x",
    "transform_rss_growth_10x",
    "transform_peak_rss_mb_1m",
    "transform_peak_rss_mb_1m_basis",
    "state_plan_s_1m_sqlite",
    "state_plan_s_1m_postgresql",
    "e2e_bound_ratio",
    "e2e_airflow_overhead_s",
    "insightiq_requests_per_creator",
    "incremental_send_ratio",
    "dag_parse_s_max",
    "sandbox_start_s_100k",
    "insightiq_requests_per_hourly_run_10k",
    "insightiq_requests_per_hourly_run_100k",
    "insightiq_requests_per_hourly_run_1m",
    "insightiq_requests_per_hourly_run_1m_per_account_contents",
    "insightiq_requests_per_hourly_run_1m_without_history",
    "insightiq_requests_history_per_hour_1m",
    "insightiq_requests_history_max_per_run_1m",
    "backfill_30d_requests_ratio",
    "backfill_30d_requests_ratio_sim",
    "e2e_100k_wall_s",
    "e2e_100k_peak_rss_mb",
    "webhook_to_insider_p50_s",
    "webhook_to_insider_p95_s",
)


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    check: Callable[[Mapping[str, Any]], bool | None]


def _num(results: Mapping[str, Any], key: str) -> float | None:
    value = results.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cmp(key: str, op: str, bound: float) -> Callable[[Mapping[str, Any]], bool | None]:
    def check(results: Mapping[str, Any]) -> bool | None:
        value = _num(results, key)
        if value is None:
            return None
        return value >= bound if op == ">=" else value <= bound if op == "<=" else value < bound

    return check


FETCH_UTILISATION_TARGET = 0.99
E2E_BOUND_RATIO_TARGET = 1.1


def _fetch_ok(results: Mapping[str, Any]) -> bool | None:
    """Utilisation at the target with no request the vendor had to refuse: no 429, no window over the
    limit and no request arriving into a full window (a missing count of the latter fails too)."""
    util, base = _num(results, "fetch_utilisation"), _num(results, "fetch_utilisation_baseline")
    windows, n429 = _num(results, "fetch_over_limit_windows"), _num(results, "fetch_429s")
    into_full = _num(results, "fetch_requests_into_full_window")
    if util is None or windows is None or n429 is None:
        return None
    return (
        util >= FETCH_UTILISATION_TARGET
        and windows == 0
        and n429 == 0
        and into_full == 0
        and (base is None or util > base)
    )


TRANSFORM_PEAK_RSS_MB_1M_TARGET = 1024
STATE_PLAN_S_1M_TARGET = 60
TRANSFORM_RSS_GROWTH_10X_TARGET = 1.3


def _memory_flat(results: Mapping[str, Any]) -> bool | None:
    small = _num(results, "transform_rows_peak_rss_mb_100k")
    big = _num(results, "transform_rows_peak_rss_mb_1m")
    if small is None or big is None or small <= 0:
        return None
    return big <= 1.5 * small


TARGETS: tuple[Target, ...] = (
    Target(
        "fetch_utilisation",
        f">= {FETCH_UTILISATION_TARGET}, 0 429s, 0 requests into a full window, > baseline",
        _fetch_ok,
    ),
    Target("upsert_request_ratio", "<= 1.01", _cmp("upsert_request_ratio", "<=", 1.01)),
    Target("transform_rows_per_s", ">= 200,000", _cmp("transform_rows_per_s", ">=", 200_000)),
    Target("transform_rows_peak_rss_mb_1m", "<= 1.5 x the 100k peak", _memory_flat),
    Target(
        "transform_peak_rss_mb_1m",
        f"<= {TRANSFORM_PEAK_RSS_MB_1M_TARGET:,} MB (1,000,000 creators)",
        _cmp("transform_peak_rss_mb_1m", "<=", TRANSFORM_PEAK_RSS_MB_1M_TARGET),
    ),
    Target(
        "transform_rss_growth_10x",
        f"<= {TRANSFORM_RSS_GROWTH_10X_TARGET} (peak at 10x the creators / peak at 1x)",
        _cmp("transform_rss_growth_10x", "<=", TRANSFORM_RSS_GROWTH_10X_TARGET),
    ),
    Target(
        "state_plan_s_1m_sqlite",
        f"<= {STATE_PLAN_S_1M_TARGET} s (1M users, 30M ledger rows)",
        _cmp("state_plan_s_1m_sqlite", "<=", STATE_PLAN_S_1M_TARGET),
    ),
    Target(
        "state_plan_s_1m_postgresql",
        f"<= {STATE_PLAN_S_1M_TARGET} s (1M users, 30M ledger rows)",
        _cmp("state_plan_s_1m_postgresql", "<=", STATE_PLAN_S_1M_TARGET),
    ),
    Target(
        "e2e_bound_ratio",
        f"<= {E2E_BOUND_RATIO_TARGET}",
        _cmp("e2e_bound_ratio", "<=", E2E_BOUND_RATIO_TARGET),
    ),
    Target("incremental_send_ratio", "<= 0.02", _cmp("incremental_send_ratio", "<=", 0.02)),
    Target("dag_parse_s_max", "< 0.3 s", _cmp("dag_parse_s_max", "<", 0.3)),
    Target(
        "insightiq_requests_per_hourly_run_100k",
        "<= 3,000",
        _cmp("insightiq_requests_per_hourly_run_100k", "<=", 3_000),
    ),
    Target(
        "insightiq_requests_per_hourly_run_1m",
        "<= 28,800 (80% of 36,000/h)",
        _cmp("insightiq_requests_per_hourly_run_1m", "<=", 28_800),
    ),
    Target(
        "insightiq_requests_per_hourly_run_1m_per_account_contents",
        "<= 28,800 (contents read per account)",
        _cmp("insightiq_requests_per_hourly_run_1m_per_account_contents", "<=", 28_800),
    ),
    Target("backfill_30d_requests_ratio", "<= 2", _cmp("backfill_30d_requests_ratio", "<=", 2)),
    Target("backfill_30d_requests_ratio_sim", "<= 2", _cmp("backfill_30d_requests_ratio_sim", "<=", 2)),
    Target("e2e_100k_peak_rss_mb", "<= 1,024 MB (any one task)", _cmp("e2e_100k_peak_rss_mb", "<=", 1024)),
    Target("webhook_to_insider_p95_s", "<= 60 s", _cmp("webhook_to_insider_p95_s", "<=", 60)),
)


def rate_limit_bound_s(
    insightiq_requests: int,
    insightiq_rate_per_s: float,
    upsert_requests: int,
    upsert_limit: float,
    upsert_window_s: float,
) -> float:
    """Fastest possible run given its requests: every request at exactly the vendor's limit, no overhead.

    InsightIQ requests / InsightIQ rate (per second) + upsert requests / (upsert limit / upsert window).
    """
    if insightiq_rate_per_s <= 0 or upsert_limit <= 0 or upsert_window_s <= 0:
        raise ValueError("rates must be positive")
    return insightiq_requests / insightiq_rate_per_s + upsert_requests / (upsert_limit / upsert_window_s)


def bound_ratio(wall_s: float, bound_s: float) -> float | None:
    """wall / bound; None when the bound is 0 (a run that made no requests has no rate-limit bound)."""
    return None if bound_s <= 0 else wall_s / bound_s


def upsert_ratio(requests: int, users: int, per_request: int = 1000) -> float:
    """Requests sent / the fewest possible (ceil(users / per_request))."""
    if users <= 0:
        raise ValueError("users must be positive")
    return requests / math.ceil(users / per_request)


def utilisation(accepted_requests: int, elapsed_s: float, limit_per_s: float) -> float:
    """Accepted requests per second over the job, as a fraction of the vendor limit."""
    if elapsed_s <= 0 or limit_per_s <= 0:
        raise ValueError("elapsed and limit must be positive")
    return accepted_requests / elapsed_s / limit_per_s


def _seconds_after(origin: datetime, value: str | None) -> float | None:
    if not value:
        return None
    return round((datetime.fromisoformat(value.replace("Z", "+00:00")) - origin).total_seconds(), 2)


def task_timeline(tasks: Mapping[str, Mapping[str, Any]], run_start: str) -> dict[str, dict[str, Any]]:
    """Per task instance (REST ``queued_when``/``start_date``/``end_date``): seconds from the run's start
    to queued, start and end, ``start_latency`` = start - queued (the executor / Task SDK start cost) and
    ``run`` = end - start, ordered by start. Missing timestamps stay None."""
    origin = datetime.fromisoformat(run_start.replace("Z", "+00:00"))
    rows = {}
    for name, ti in tasks.items():
        queued = _seconds_after(origin, ti.get("queued_when"))
        start = _seconds_after(origin, ti.get("start_date"))
        end = _seconds_after(origin, ti.get("end_date"))
        rows[name] = {
            "queued": queued,
            "start": start,
            "end": end,
            "start_latency": round(start - queued, 2) if start is not None and queued is not None else None,
            "run": round(end - start, 2) if end is not None and start is not None else None,
        }
    return dict(sorted(rows.items(), key=lambda kv: (kv[1]["start"] is None, kv[1]["start"] or 0.0)))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default);
    None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _flat_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)  # never nest: the file is one flat object


MILLION = 1_000_000
INSIGHTIQ_RATE_PER_S = 10.0  # the documented limit (pools.json)
UPSERT_USERS_PER_REQUEST, UPSERT_PER_S = 1000, 25_000 / 60


def million_creator_run(results: Mapping[str, Any]) -> dict[str, Any]:
    """A 1,000,000-creator hourly run computed from measured parts (each None when its part is missing):
    InsightIQ requests (the planner simulation), their time at the documented 10/s, the upserts if every
    creator were sent (an upper bound: unchanged creators cost no request), the transform's peak RSS at 1M
    creators, and the state store's work (plan + record + claim renewals, per backend) with its share of
    the vendor-bound wall."""
    out: dict[str, Any] = {}
    # one creator_sync run: the hour's figure without the creator_sync_history run when the simulation has it
    requests = _num(results, "insightiq_requests_per_hourly_run_1m_without_history")
    if requests is None:
        requests = _num(results, "insightiq_requests_per_hourly_run_1m")
    bound = None
    if requests is not None:
        upserts = math.ceil(MILLION / UPSERT_USERS_PER_REQUEST)
        bound = requests / INSIGHTIQ_RATE_PER_S + upserts / UPSERT_PER_S
        out["run_1m_insightiq_requests"] = int(requests)
        out["run_1m_upsert_requests_max"] = upserts
        out["run_1m_bound_s"] = round(bound, 1)
    out["run_1m_transform_peak_rss_mb"] = _num(results, "transform_peak_rss_mb_1m")
    for backend in ("sqlite", "postgresql"):
        state = _num(results, f"state_state_s_1m_{backend}")
        out[f"run_1m_state_s_{backend}"] = state
        out[f"run_1m_state_share_{backend}"] = (
            round(state / bound, 3) if state is not None and bound else None
        )
    return out


def build_results(measured: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One flat object: every required key (None where not measured), then extras and context keys.

    Nested values (dicts/lists) are stored as JSON strings so the object stays flat.
    """
    out: dict[str, Any] = {key: _flat_value(measured.get(key)) for key in REQUIRED_KEYS}
    for key, value in measured.items():
        if key not in out:
            out[key] = _flat_value(value)
    for key, value in million_creator_run(out).items():
        out.setdefault(key, _flat_value(value))
    for key, value in (context or {}).items():
        out[key] = _flat_value(value)
    out["targets_met"] = _flat_value({t.key: t.check(out) for t in TARGETS})
    return out


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lack required keys: {missing}")
    if any(isinstance(v, dict | list) for v in results.values()):
        raise ValueError("results must be one flat JSON object")
    path.write_text(json.dumps(dict(results), indent=2) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_table(results: Mapping[str, Any]) -> str:
    """Markdown table: every required key, its value, and the target verdict where one applies."""
    verdicts = {t.key: t for t in TARGETS}
    rows = [("metric", "value", "target", "status"), ("---", "---:", "---", "---")]
    for key in REQUIRED_KEYS:
        target = verdicts.get(key)
        if target is None:
            rows.append((key, _fmt(results.get(key)), "", ""))
            continue
        ok = target.check(results)
        status = "n/a" if ok is None else "met" if ok else "MISSED"
        rows.append((key, _fmt(results.get(key)), target.label, status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |" for row in rows
    )
