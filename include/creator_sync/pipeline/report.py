"""Run summary: counts, the reconciliation `fetched creators == sent + rejected + unchanged (+ claimed by
another run)`, per-vendor request figures, and the markdown text.

The figures describe the RUN, not the last task attempt: `run_send_totals` reads what every attempt of the
run recorded in the state store (per-user outcomes, per-attempt client counters). A dry run records
nothing, so its figures come from the one (re-computed) planning pass: what WOULD be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from creator_sync.pipeline.drift import drift_line
from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.stats import TransformStats
from creator_sync.reasons import UNSETTLED_LOST_ANSWER, USER_TOO_LARGE, VENDOR_REJECTED
from creator_sync.store import (
    OUTCOME_CLAIMED_ELSEWHERE,
    OUTCOME_OFFBOARDED,
    OUTCOME_SENT,
    OUTCOME_UNCHANGED,
    StateStore,
)

VENDORS = ("InsightIQ", "Insider")
# client counters summed over the run's task attempts: requests sent, requests re-sent after an unusable
# answer, 429s, calls that ended in an error (retries exhausted, or a lost answer the client must not
# re-send), and lost answers of requests that change state (checked with the Profile API, never resent)
VENDOR_COUNTERS = ("requests", "retries", "rate_limited_429", "failures", "ambiguous")
SENDER_VENDOR = "Insider"  # the upsert attempts also store their send counters under this vendor


class ReconciliationError(RuntimeError):
    """The run's figures do not add up: some creator was neither sent, rejected, unchanged nor skipped."""


@dataclass
class RunSummary:
    run_id: str
    fetched_creators: int
    transformed: int  # users written for sending (valid)
    sent: int  # dry run: would be sent
    rejected: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    claimed_elsewhere: int = 0  # held by another live run's claim: that run sends them
    events_sent: int = 0
    events_already_acknowledged: int = 0
    requests: int = 0  # upsert requests answered (dry run: planned)
    retried_requests: int = 0  # all vendors
    rate_limited_429: int = 0  # all vendors
    vendors: dict[str, dict[str, int]] = field(default_factory=dict)  # vendor -> VENDOR_COUNTERS
    orphan_events: int = 0
    unattributed_errors: int = 0
    malformed_records: dict[str, int] = field(default_factory=dict)  # resource -> records without their id
    unification_errors: int = 0  # sent users Insider reported through the error callback (so far)
    dry_run: bool = False
    offboarded: int = 0  # creators who left: skipped before the transform (docs/offboarding.md)
    schema_drift: dict[str, list[str]] = field(default_factory=dict)  # creator_sync.pipeline.drift
    # accounts whose history an item of their past reopened (creator_sync.pipeline.late_history)
    history_reopened: int = 0
    # accounts not CONNECTED a per-account read of which InsightIQ refused (a 400): no data for them in this
    # run (creator_sync.sync.insightiq_reads.Refusals; their history re-reads the gap on reconnect)
    refused_accounts: list[str] = field(default_factory=list)
    # clearing (creator_sync.pipeline.clearing / clear): users and attributes clears.jsonl lists (the
    # transform), and the clear pass after the upsert: users / attributes Insider confirmed, users failed
    # (dead letters, reason clear_failed); clear_sent: the upsert recorded a clear pass
    clear_users: int = 0
    clear_attributes: int = 0
    users_cleared: int = 0
    attributes_cleared: int = 0
    clears_failed: int = 0
    clears_superseded: int = (
        0  # listed for a last payout only, which counts again at the clear (pipeline.clear)
    )
    clear_sent: bool = False

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def accounted(self) -> int:
        return self.sent + self.rejected_total + self.unchanged + self.claimed_elsewhere + self.offboarded

    @property
    def clears_reconciled(self) -> bool:
        """Every user clears.jsonl lists ends cleared or failed (a dead letter), once a clear pass ran."""
        if self.dry_run or not self.clear_sent:
            return True
        return self.clear_users == self.users_cleared + self.clears_failed + self.clears_superseded

    @property
    def reconciled(self) -> bool:
        return self.fetched_creators == self.accounted and self.clears_reconciled

    def clear_line(self) -> str:
        """The clearing figures in one sentence ('' when there was nothing to clear)."""
        if not self.clear_users:
            return ""
        listed = f"{self.clear_attributes} attribute(s) of {self.clear_users} user(s)"
        if self.dry_run:
            return f"Clearing: would remove {listed} of platforms without a connected account."
        if not self.clear_sent:
            return f"Clearing: {listed} listed in clears.jsonl; this run's upsert sent no clears."
        line = (
            f"Clearing: {self.attributes_cleared} attribute(s) of {self.users_cleared} user(s) removed at "
            f"Insider (platforms without a connected account); {self.clears_failed} user(s) failed "
            "(dead letters, reason clear_failed)"
        )
        if self.clears_reconciled:
            return line + "."
        gap = self.clear_users - self.users_cleared - self.clears_failed - self.clears_superseded
        return f"{line}; CLEARS DO NOT RECONCILE: {self.clear_users} listed, {gap} unaccounted for."

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rejected_total": self.rejected_total, "reconciled": self.reconciled}

    def reconciliation_line(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        claimed = f" + {self.claimed_elsewhere} claimed by another run" if self.claimed_elsewhere else ""
        equation = (
            f"{self.fetched_creators} fetched creators vs {self.sent} {verb} + {self.rejected_total} rejected"
            f" + {self.unchanged} unchanged{claimed}"
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

    def dry_run_line(self) -> str:
        return (
            f"DRY RUN: would send {self.sent} users, {self.events_sent} events in {self.requests} requests; "
            f"unchanged {self.unchanged}; rejected {self.rejected_total}. Nothing was sent or recorded."
        )

    def render(self) -> str:
        """Short markdown for the task log, report.md and the DAG run note."""
        rejected = ", ".join(f"{r}: {n}" for r, n in sorted(self.rejected.items())) or "none"
        would = "would be " if self.dry_run else ""
        lines = [f"**{self.dry_run_line()}**", ""] if self.dry_run else []
        lines += [
            f"### creator-sync run `{self.run_id}`",
            "",
            "| figure | count |",
            "|---|---|",
            f"| fetched creators | {self.fetched_creators} |",
            f"| transformed (valid users) | {self.transformed} |",
            f"| {'would send' if self.dry_run else 'sent (accepted by Insider)'} | {self.sent} |",
            f"| rejected | {self.rejected_total} ({rejected}) |",
            f"| unchanged, skipped | {self.unchanged} |",
            f"| offboarded, skipped | {self.offboarded} |",
        ]
        if self.claimed_elsewhere:
            lines.append(f"| claimed by another live run, skipped | {self.claimed_elsewhere} |")
        lines += [
            f"| events {would}sent | {self.events_sent} |",
            f"| events already acknowledged, skipped | {self.events_already_acknowledged} |",
            f"| upsert requests{' (planned)' if self.dry_run else ''} | {self.requests} |",
            "",
            "| vendor | requests | retries | 429s | failed calls | answers lost |",
            "|---|---|---|---|---|---|",
        ]
        for vendor in VENDORS:
            v = self.vendors.get(vendor) or {}
            lines.append(
                f"| {vendor} | {v.get('requests', 0)} | {v.get('retries', 0)} "
                f"| {v.get('rate_limited_429', 0)} | {v.get('failures', 0)} | {v.get('ambiguous', 0)} |"
            )
        lines += ["", self.reconciliation_line(), *self.note_lines()]
        return "\n".join(lines)

    def note_lines(self) -> list[str]:
        """The report's lines after the reconciliation: only those with something to say."""
        lines: list[str] = []
        if clear := self.clear_line():
            lines.append(clear)
        if self.malformed_records:
            parts = ", ".join(f"{r}: {n}" for r, n in sorted(self.malformed_records.items()))
            lines.append(
                f"Source records without their id (dead letters, reason malformed_source_record): {parts}."
            )
        if self.unification_errors:
            lines.append(
                f"Insider reported {self.unification_errors} sent user(s) failing unification through the "
                "error callback so far (dead letters, reason unification_error)."
            )
        if self.orphan_events:
            lines.append(
                f"{self.orphan_events} event(s) belonged to creators not in this fetch and were skipped."
            )
        if self.unattributed_errors:
            lines.append(f"{self.unattributed_errors} Insider error key(s) named no user; see the task log.")
        if self.history_reopened:
            lines.append(
                f"history_reopened: {self.history_reopened} account(s) have items of their past InsightIQ "
                "listed after the history path read it; creator_sync_history sends them."
            )
        if self.refused_accounts:
            lines.append(
                f"refused_accounts: InsightIQ refused the reads of {len(self.refused_accounts)} account(s) "
                f"not connected, read as no data this run: {', '.join(self.refused_accounts)} (their history "
                "re-reads the gap when they connect again)."
            )
        if drift := drift_line(self.schema_drift):
            lines.append(drift)
        return lines


def _vendor_figures(vendors: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, int]]:
    return {
        name: {key: int((vendors or {}).get(name, {}).get(key, 0)) for key in VENDOR_COUNTERS}
        for name in VENDORS
    }


def build_summary(
    run_id: str,
    transform: TransformStats,
    send: SendReport,
    client_stats: Mapping[str, Any] | None = None,
    *,
    vendors: Mapping[str, Mapping[str, Any]] | None = None,
    cleared: Mapping[str, Any] | None = None,
) -> RunSummary:
    """`vendors` = {vendor: {requests, retries, rate_limited_429}}; `client_stats` (the Insider hook's
    `stats`) is the single-vendor shorthand for callers without a run (tests, replay). `cleared`: the clear
    pass's counters (creator_sync.pipeline.clear.ClearReport.counters; None: no clear pass)."""
    if vendors is None and client_stats is not None:
        vendors = {SENDER_VENDOR: client_stats}
    figures = _vendor_figures(vendors)
    return RunSummary(
        run_id=run_id,
        fetched_creators=transform.fetched_creators,
        transformed=transform.users_written,
        sent=send.users_sent,
        rejected=dict(send.rejected),
        unchanged=send.unchanged,
        claimed_elsewhere=send.claimed_elsewhere,
        events_sent=send.events_sent,
        events_already_acknowledged=send.events_already_acknowledged,
        requests=send.requests,
        retried_requests=sum(v["retries"] for v in figures.values()),
        rate_limited_429=sum(v["rate_limited_429"] for v in figures.values()),
        vendors=figures,
        orphan_events=transform.orphan_events,
        unattributed_errors=send.unattributed_errors,
        malformed_records=dict(getattr(transform, "malformed_records", None) or {}),
        unification_errors=send.unification_errors,
        dry_run=send.dry_run,
        offboarded=transform.offboarded + send.offboarded,
        schema_drift=dict(getattr(transform, "schema_drift", None) or {}),
        history_reopened=int(getattr(transform, "history_reopened", 0)),
        **_clear_figures(transform, cleared),
    )


def _clear_figures(transform: TransformStats, cleared: Mapping[str, Any] | None) -> dict[str, Any]:
    done = cleared if cleared and "clear_users" in cleared else None
    return {
        "clear_users": int(getattr(transform, "clear_users", 0)),
        "clear_attributes": int(getattr(transform, "clear_attributes", 0)),
        "users_cleared": int((done or {}).get("clear_users_cleared", 0)),
        "attributes_cleared": int((done or {}).get("attributes_cleared", 0)),
        "clears_failed": int((done or {}).get("clear_users_failed", 0)),
        "clears_superseded": int((done or {}).get("clear_users_superseded", 0)),
        "clear_sent": done is not None,
    }


def run_clear_counters(state: StateStore, run_id: str) -> dict[str, Any] | None:
    """The clear pass of the run's latest upsert attempt (the one that finished), None when it ran none."""
    latest = state.latest_client_stats(run_id, SENDER_VENDOR)
    return latest if "clear_users" in latest else None


def run_send_totals(state: StateStore, run_id: str, transform: TransformStats) -> SendReport:
    """The run's send figures over ALL its task attempts, from the state store: per-user outcomes (sent,
    unchanged, claimed elsewhere, rejected at send time), the transform's rejections, and the attempts'
    send counters (upsert requests, unattributed errors; events already acknowledged of the last attempt)."""
    outcomes = state.run_outcomes(run_id)

    def users(outcome: str) -> int:
        return outcomes.get(outcome, {}).get("users", 0)

    report = SendReport(
        users_sent=users(OUTCOME_SENT),
        events_sent=outcomes.get(OUTCOME_SENT, {}).get("events", 0),
        rejected=dict(transform.rejected),
        unchanged=users(OUTCOME_UNCHANGED),
        claimed_elsewhere=users(OUTCOME_CLAIMED_ELSEWHERE),
        offboarded=users(OUTCOME_OFFBOARDED),
    )
    for reason in (VENDOR_REJECTED, USER_TOO_LARGE, UNSETTLED_LOST_ANSWER):
        if users(reason):
            report.reject(reason, users(reason))
    sender = state.run_client_totals(run_id).get(SENDER_VENDOR, {})
    report.requests = int(sender.get("upserts", 0))
    report.unattributed_errors = int(sender.get("unattributed_errors", 0))
    report.lost_answers = int(sender.get("lost_answers", 0))
    report.in_flight_confirmed = int(sender.get("in_flight_confirmed", 0))
    report.in_flight_resent = int(sender.get("in_flight_resent", 0))
    latest = state.latest_client_stats(run_id, SENDER_VENDOR)
    report.events_already_acknowledged = int(latest.get("events_already_acknowledged", 0))
    report.unification_errors = state.callback_errors(run_id)
    return report
