"""What the view shows of one stored run report (``StateStore.run_reports()``), read tolerantly.

The report step stores the run's figures as JSON. Per-vendor request counters are read from
``figures["vendors"][<vendor>]`` (vendor name in any case: ``InsightIQ``, ``Insider``; counters
``requests``, ``retries``, ``rate_limited_429``, optional ``seconds``);
reports that only carry the flat keys (``insightiq_requests``, ``insider_requests``, ``retried_requests``,
``rate_limited_429``) are shown with those, a counter the report does not have is shown as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from creator_sync.limits import INSIDER_UPSERT_POOL, INSIGHTIQ_POOL, rate_limit

# vendor key in the figures -> (display name, the pool whose rate limit applies)
VENDORS: dict[str, tuple[str, str]] = {
    "insightiq": ("InsightIQ", INSIGHTIQ_POOL),
    "insider": ("Insider One", INSIDER_UPSERT_POOL),
}
COUNTERS = ("requests", "retries", "rate_limited_429")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class VendorFigures:
    requests: int | None = None
    retries: int | None = None
    rate_limited_429: int | None = None
    seconds: float | None = None  # time the vendor's requests were spread over, when the report says

    def rate(self, fallback_seconds: float | None) -> float | None:
        """Average requests per second over the vendor's own time, else over the whole run."""
        seconds = self.seconds or fallback_seconds
        if self.requests is None or not seconds:
            return None
        return self.requests / seconds


@dataclass
class RunRow:
    dag_id: str
    run_id: str
    created_at: datetime
    ok: bool
    reconciled: bool | None
    fetched: int | None
    sent: int | None
    rejected: int | None
    unchanged: int | None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    vendors: dict[str, VendorFigures] = field(default_factory=dict)
    dry_run: bool = False
    text: str = ""
    # from Airflow's own DagRun record, when the API server has it
    state: str | None = None
    seconds: float | None = None

    @property
    def reconciliation(self) -> str:
        if self.reconciled is None:
            return "n/a"
        return "holds" if self.reconciled else "GAP"


def _vendors(figures: dict[str, Any]) -> dict[str, VendorFigures]:
    nested = figures.get("vendors")
    if isinstance(nested, dict):
        out = {}
        for key, values in nested.items():
            values = values if isinstance(values, dict) else {}
            seconds = values.get("seconds")
            out[str(key).lower()] = VendorFigures(
                *(_int(values.get(c)) for c in COUNTERS),
                seconds=float(seconds) if isinstance(seconds, int | float) else None,
            )
        return out
    return {
        "insightiq": VendorFigures(requests=_int(figures.get("insightiq_requests"))),
        "insider": VendorFigures(
            requests=_int(figures.get("insider_requests", figures.get("requests"))),
            retries=_int(figures.get("retried_requests")),
            rate_limited_429=_int(figures.get("rate_limited_429")),
        ),
    }


def run_row(report: dict[str, Any], airflow_run: dict[str, Any] | None = None) -> RunRow:
    """``report``: one ``StateStore.run_reports()`` entry; ``airflow_run``: ``{"state", "seconds"}``."""
    figures = report.get("figures") or {}
    rejected = figures.get("rejected")
    by_reason = {str(k): int(v) for k, v in rejected.items()} if isinstance(rejected, dict) else {}
    rejected_total = _int(figures.get("rejected_total"))
    if rejected_total is None:
        rejected_total = sum(by_reason.values()) if isinstance(rejected, dict) else _int(rejected)
    reconciled = figures.get("reconciled")
    return RunRow(
        dag_id=report["dag_id"],
        run_id=report["run_id"],
        created_at=report["created_at"],
        ok=bool(report.get("ok")),
        reconciled=bool(reconciled) if reconciled is not None else None,
        fetched=_int(figures.get("fetched_creators", figures.get("fetched"))),
        sent=_int(figures.get("sent")),
        rejected=rejected_total,
        unchanged=_int(figures.get("unchanged")),
        rejected_by_reason=by_reason,
        vendors=_vendors(figures),
        dry_run=bool(figures.get("dry_run")),
        text=str(report.get("text") or ""),
        state=(airflow_run or {}).get("state"),
        seconds=(airflow_run or {}).get("seconds"),
    )


def vendor_limit(vendor: str) -> float | None:
    """The vendor's documented limit in requests per second (pools file), None for an unknown vendor."""
    if vendor not in VENDORS:
        return None
    limit = rate_limit(VENDORS[vendor][1])
    return limit.limit / limit.window


def vendor_name(vendor: str) -> str:
    return VENDORS.get(vendor, (vendor, ""))[0]
