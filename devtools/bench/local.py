"""Benchmarks that need no Airflow: the transform (subprocess per size: by event rows and by creators), the
directory snapshot merge (subprocess per size), DAG file parse time (Airflow's own DagBag, one file at a
time, in a warm subprocess) and the InsightIQ sandbox's start at 100k creators."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {text[-500:]!r}")


def _run_module(args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return last_json_line(proc.stdout)


def run_transform(rows: int, timeout: float = 900) -> dict[str, Any]:
    """`devtools.bench.transform_data --rows N` in a fresh process (its peak RSS is that process's)."""
    return _run_module(["devtools.bench.transform_data", "--rows", str(rows)], timeout)


def run_transform_creators(creators: int, timeout: float = 1800) -> dict[str, Any]:
    """`devtools.bench.transform_creators --creators N` in a fresh process (its peak RSS is its own)."""
    return _run_module(["devtools.bench.transform_creators", "--creators", str(creators)], timeout)


def run_snapshot_merge(creators: int, timeout: float = 1800, full_read: bool = False) -> dict[str, Any]:
    """`devtools.bench.snapshot_merge --creators N [--full-read]` in a fresh process (its peak RSS is its
    own)."""
    flags = ["--full-read"] if full_read else []
    return _run_module(["devtools.bench.snapshot_merge", "--creators", str(creators), *flags], timeout)


def _size_label(n: int) -> str:
    """100000 -> 100k, 1000000 -> 1m (the key suffix of a size)."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def snapshot_merge_memory(
    small: dict[str, Any], big: dict[str, Any], prefix: str = "snapshot_merge"
) -> dict[str, Any]:
    """The snapshot merge's memory keys from runs at N and 10 x N creators: each peak
    (`snapshot_merge_peak_rss_mb_<size>`) and their ratio; `prefix` `snapshot_merge_full_read` for runs of a
    full read's directory step (`--full-read`)."""
    out = {f"{prefix}_peak_rss_mb_{_size_label(r['creators'])}": r["peak_rss_mb"] for r in (small, big)}
    growth = big["peak_rss_mb"] / small["peak_rss_mb"] if small["peak_rss_mb"] else None
    out[f"{prefix}_rss_growth_10x"] = round(growth, 3) if growth else None
    out[f"{prefix}_rss_before_mb"] = big["peak_rss_mb_before_merge"]
    return out


def transform_memory(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    """The transform's memory keys from runs at N and 10 x N creators: the peaks, their ratio, and the peak at
    1,000,000 creators: measured when one of the runs had them, else projected as the 10 x N peak times the
    measured growth (one more decade at the rate of the last one)."""
    growth = big["peak_rss_mb"] / small["peak_rss_mb"] if small["peak_rss_mb"] else None
    out = {
        "transform_creators": small["creators"],
        "transform_creators_10x": big["creators"],
        "transform_peak_rss_mb": small["peak_rss_mb"],
        "transform_peak_rss_mb_10x": big["peak_rss_mb"],
        "transform_rss_growth_10x": round(growth, 3) if growth else None,
        "transform_rss_before_mb": big["peak_rss_mb_before_transform"],
        "transform_buckets_10x": big["buckets"],
        "transform_creators_per_s_10x": big["creators_per_s"],
    }
    measured = next((r for r in (small, big) if r["creators"] == 1_000_000), None)
    if measured is not None:
        out["transform_peak_rss_mb_1m"] = measured["peak_rss_mb"]
        out["transform_peak_rss_mb_1m_basis"] = "measured at 1,000,000 creators"
    elif growth and big["creators"] < 1_000_000:
        decades = math.log10(1_000_000 / big["creators"])
        out["transform_peak_rss_mb_1m"] = round(big["peak_rss_mb"] * growth**decades)
        out["transform_peak_rss_mb_1m_basis"] = (
            f"projected: peak at {big['creators']:,} x growth {growth:.2f} per decade, {decades:g} decade(s)"
        )
    return out


def run_state_store(backend: str, users: int, timeout: float = 3600) -> dict[str, Any]:
    """`devtools.bench.state_store --backend B --users N` in a fresh process."""
    return _run_module(["devtools.bench.state_store", "--backend", backend, "--users", str(users)], timeout)


def run_sandbox_start(creators: int = 100_000, timeout: float = 600) -> dict[str, Any]:
    """`devtools.sandbox.bench_start`: seconds from launch to the first /v1/social/contents page."""
    return _run_module(["devtools.sandbox.bench_start", "--creators", str(creators)], timeout)


# Runs in a subprocess: imports Airflow once, parses each file once to warm imports (creator_sync,
# airflow.sdk, pendulum...), then times `repeats` more DagBag parses per file and reports the median.
_PARSE_SCRIPT = r"""
import json, statistics, sys, time, glob, os
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
repeats = int(sys.argv[2])
out = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.py"))):
    t = time.perf_counter()
    bag = DagBag(dag_folder=path, safe_mode=False)
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        bag = DagBag(dag_folder=path, safe_mode=False)
        times.append(time.perf_counter() - t)
    out[os.path.basename(path)] = {
        "median_s": statistics.median(times),
        "first_s": cold,
        "max_s": max(times),
        "dags": len(bag.dags),
        "errors": len(bag.import_errors),
        "stats_s": [s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration
                    for s in bag.dagbag_stats],
    }
print(json.dumps(out))
"""


def run_dag_parse(repeats: int = 5, timeout: float = 300) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(REPO / "dags"), str(repeats)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        },
    )
    if proc.returncode != 0:
        raise RuntimeError(f"DAG parse benchmark failed: {proc.stderr[-2000:]}")
    files = last_json_line(proc.stdout)
    slowest = max(files, key=lambda f: files[f]["median_s"])
    return {"files": files, "slowest_file": slowest, "max_s": files[slowest]["median_s"]}
