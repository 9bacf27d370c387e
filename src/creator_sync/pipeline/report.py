"""Run summary: counts, the reconciliation `fetched creators == sent + rejected + unchanged`, and text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.transform import TransformStats


@dataclass
class RunSummary:
    run_id: str
    fetched_creators: int
    transformed: int  # users written for sending (valid)
    sent: int
    rejected: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    events_sent: int = 0
    events_already_acknowledged: int = 0
    requests: int = 0
    retried_requests: int = 0
    rate_limited_429: int = 0
    orphan_events: int = 0
    unattributed_errors: int = 0
    offboarded: int = 0  # creators who left: skipped before the transform (docs/offboarding.md)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def accounted(self) -> int:
        return self.sent + self.rejected_total + self.unchanged + self.offboarded

    @property
    def reconciled(self) -> bool:
        return self.fetched_creators == self.accounted

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rejected_total": self.rejected_total, "reconciled": self.reconciled}

    def reconciliation_line(self) -> str:
        equation = (
            f"{self.fetched_creators} fetched creators vs {self.sent} sent + {self.rejected_total} rejected"
            f" + {self.unchanged} unchanged"
            + (f" + {self.offboarded} offboarded" if self.offboarded else "")
            + f" = {self.accounted}"
        )
        if self.reconciled:
            return f"Reconciliation holds: {equation}."
        gap = self.fetched_creators - self.accounted
        return (
            f"RECONCILIATION DOES NOT HOLD: {equation}; {abs(gap)} creator(s) "
            f"{'unaccounted for' if gap > 0 else 'counted twice'}."
        )

    def render(self) -> str:
        """Short markdown for the task log and the DAG run note."""
        rejected = ", ".join(f"{r}: {n}" for r, n in sorted(self.rejected.items())) or "none"
        lines = [
            f"### creator-sync run `{self.run_id}`",
            "",
            "| | |",
            "|---|---|",
            f"| fetched creators | {self.fetched_creators} |",
            f"| transformed (valid users) | {self.transformed} |",
            f"| sent (accepted by Insider) | {self.sent} |",
            f"| rejected | {self.rejected_total} ({rejected}) |",
            f"| unchanged, skipped | {self.unchanged} |",
            f"| offboarded, skipped | {self.offboarded} |",
            f"| events sent | {self.events_sent} (already acknowledged, skipped: "
            f"{self.events_already_acknowledged}) |",
            f"| upsert requests | {self.requests} (retried: {self.retried_requests}, "
            f"429s: {self.rate_limited_429}) |",
            "",
            self.reconciliation_line(),
        ]
        if self.orphan_events:
            lines.append(
                f"{self.orphan_events} event(s) belonged to creators not in this fetch and were skipped."
            )
        if self.unattributed_errors:
            lines.append(f"{self.unattributed_errors} Insider error key(s) named no user; see the task log.")
        return "\n".join(lines)


def build_summary(
    run_id: str,
    transform: TransformStats,
    send: SendReport,
    client_stats: Mapping[str, Any] | None = None,
) -> RunSummary:
    """`client_stats` = the Insider hook's `stats` (retries, rate_limited_429)."""
    stats = client_stats or {}
    return RunSummary(
        run_id=run_id,
        fetched_creators=transform.fetched_creators,
        transformed=transform.users_written,
        sent=send.users_sent,
        rejected=dict(send.rejected),
        unchanged=send.unchanged,
        events_sent=send.events_sent,
        events_already_acknowledged=send.events_already_acknowledged,
        requests=send.requests,
        retried_requests=int(stats.get("retries", 0)),
        rate_limited_429=int(stats.get("rate_limited_429", 0)),
        orphan_events=transform.orphan_events,
        unattributed_errors=send.unattributed_errors,
        offboarded=transform.offboarded,
    )
