"""The creator_sync DAG's Python steps around the operators: transform, report and its Asset event.

Each step reads what the previous one wrote under the run directory and returns only paths and counts.
"""

from __future__ import annotations

import logging
from typing import Any

from creator_sync.sync.run_context import SyncRun

log = logging.getLogger(__name__)

DAG_ID = "creator_sync"


def transform_step(run: SyncRun) -> dict[str, Any]:
    """Fetched Parquet -> users.jsonl / rejected.jsonl / malformed.jsonl (pure pandas/Arrow, no Airflow);
    also returns the run's resolved `skip_hook` / `dry_run` for the upsert operator. First the run's
    directory is completed and the snapshot updated (creator_sync.sync.incremental_fetch). The income
    items read are kept in the state store and the income attributes computed from it
    (creator_sync.pipeline.income). Items of an account's past the history path has not sent reopen its
    history (creator_sync.pipeline.late_history)."""
    from creator_sync import settings
    from creator_sync.pipeline.income import IncomeState
    from creator_sync.pipeline.late_history import early_rows
    from creator_sync.pipeline.transform import ContentsRead, transform_run
    from creator_sync.storage import staged_input, staged_output
    from creator_sync.store import StateStore, offboarded_ids
    from creator_sync.sync.incremental_fetch import complete_directory, income_sweep_from

    directory = complete_directory(run)
    late = settings.current().history_reopen_late and not run.dry_run

    # pyarrow reads local files: on object storage the fetched files are staged in and the outputs out
    out = run.dir / "transform"
    with staged_input(run.dir / "fetch") as fetched, staged_output(out) as local_out:
        with early_rows(local_out, late) as early:
            result = transform_run(
                fetched,
                start=run.start,
                end=run.end,
                events_from=run.events_from,
                out_dir=local_out,
                offboarded=offboarded_ids,
                sweep_from=income_sweep_from(run),
                contents=ContentsRead(
                    run.contents_from, frozenset(run.account_ids) if run.account_ids else None
                ),
                income_state=IncomeState(StateStore(), keep=not run.dry_run),  # a dry run keeps none
                early=early,
            )
        if late:
            _reopen_late(result, local_out)
    log.info("transform: %s", result.stats)
    return {
        "users_path": str(out / result.users_path.name),
        "rejected_path": str(out / result.rejected_path.name),
        "malformed_path": str(out / result.malformed_path.name),
        "clears_path": str(out / result.clears_path.name),
        "stats_path": str(out / result.stats_path.name),
        "users": result.stats.users_written,
        "rejected": result.stats.rejected,
        "events": result.stats.events_written,
        "skip_hook": run.skip_hook,
        "dry_run": run.dry_run,
        "directory": directory,
    }


def _reopen_late(result, out_dir, now=None) -> None:
    """The late-history check of the run's early events; the count goes into the transform stats (the run
    report's `history_reopened`). Creators who left, and those the run rejects (Insider cannot take them:
    their past is a dead letter, never in the ledger), reopen nothing."""
    from datetime import UTC, datetime

    from creator_sync.pipeline.late_history import reopen_late
    from creator_sync.pipeline.send import iter_jsonl
    from creator_sync.pipeline.stats import write_stats
    from creator_sync.store import StateStore, offboarded_ids

    rejected = {str(r["user_key"]) for r in iter_jsonl(result.rejected_path)}

    def left(ids) -> set[str]:
        ids = set(ids)
        return offboarded_ids(ids) | (ids & rejected)

    now = now or datetime.now(UTC)
    result.stats.history_reopened = reopen_late(out_dir, StateStore(), now, left)
    write_stats(result.stats, result.stats_path)


def header(run: SyncRun) -> str:
    lookback = ""
    if run.lookback_hours:
        lookback = f", look-back {run.lookback_hours} h: events from {run.events_from:%Y-%m-%d %H:%M}"
    return (
        f"creator_sync {run.start:%Y-%m-%d %H:%M} .. {run.end:%Y-%m-%d %H:%M} UTC"
        f" (skip_hook={str(run.skip_hook).lower()}{lookback}"
        f"{', accounts ' + ','.join(run.account_ids) if run.account_ids else ''})"
    )


def run_summary(run: SyncRun, transformed: dict[str, Any], sent: dict[str, Any], state=None):
    """The run's summary: a real run's figures from the state store (every task attempt of the run), a dry
    run's from the upsert's XCom (it records nothing); request figures per vendor from the state store; the
    accounts whose reads InsightIQ refused from the fetch (`<run>/fetch/refused/`)."""
    from creator_sync.pipeline.report import build_summary, run_clear_counters, run_send_totals
    from creator_sync.pipeline.send import SendReport
    from creator_sync.pipeline.stats import load_stats
    from creator_sync.store import StateStore
    from creator_sync.sync.insightiq_reads import refused_accounts

    state = state or StateStore()
    stats = load_stats(transformed["stats_path"])
    send = SendReport(**sent["send"]) if run.dry_run else run_send_totals(state, run.run_id, stats)
    cleared = _dry_clear(sent) if run.dry_run else run_clear_counters(state, run.run_id)
    vendors = state.run_client_totals(run.run_id)
    summary = build_summary(run.run_id, stats, send, vendors=vendors, cleared=cleared)
    summary.refused_accounts = refused_accounts(run.dir)
    return summary


def _dry_clear(sent: dict[str, Any]) -> dict[str, Any] | None:
    """A dry run's clear figures: what the upsert's clear pass would remove (from its XCom)."""
    from creator_sync.pipeline.clear import ClearReport

    clear = sent.get("clear")
    return ClearReport(**clear).counters() if clear else None


def report_step(
    run: SyncRun, transformed: dict[str, Any], sent: dict[str, Any], state=None
) -> dict[str, Any]:
    """Log, report.md, run note and StateStore.save_run_report; a reconciliation gap fails the task
    (after the report is stored, so the gap is visible)."""
    from airflow.sdk.exceptions import AirflowFailException

    from creator_sync.run_checks import fail_on_rejection_rate
    from creator_sync.store import StateStore
    from creator_sync.sync.run_note import set_run_note

    state = state or StateStore()
    summary = run_summary(run, transformed, sent, state)
    text = f"{header(run)}\n{summary.render()}"
    if run.dry_run:
        text = f"DRY RUN - nothing was sent or recorded\n{text}"
    log.info("%s", text)
    (run.dir / "report.md").write_text(text + "\n")
    figures = {
        **summary.as_dict(),
        "insightiq_requests": summary.vendors["InsightIQ"]["requests"],
        "insider_requests": summary.vendors["Insider"]["requests"],
        "skip_hook": run.skip_hook,
        "dry_run": run.dry_run,
        "lookback_hours": run.lookback_hours,
        "users_path": transformed["users_path"],
    }
    state.save_run_report(DAG_ID, run.run_id, figures, text, summary.reconciled)
    set_run_note(DAG_ID, run.run_id, text)
    fail_on_rejection_rate(summary.fetched_creators, summary.rejected)  # after the report is written
    if not summary.reconciled:
        raise AirflowFailException(
            f"{summary.reconciliation_line()} Every fetched creator must end sent, rejected (dead letters), "
            f"unchanged or claimed by another run; see {run.dir / 'report.md'} and the dead letters of run "
            f"{run.run_id}."
        )
    return {**figures, "text": text}


def announce_users(summary: dict[str, Any], outlet_events: Any) -> bool:
    """The profile audit's trigger: an event of the INSIDER_USERS Asset, added through the report task's
    alias outlet after the report reconciled. None on a dry run (nothing was sent). Returns whether it
    added one."""
    from creator_sync.assets import INSIDER_USERS, INSIDER_USERS_SENT

    if summary["dry_run"]:
        log.info("dry run: nothing was sent, no %s event", INSIDER_USERS.name)
        return False
    extra = {"run_id": summary["run_id"], "users_path": summary["users_path"], "sent": summary["sent"]}
    outlet_events[INSIDER_USERS_SENT].add(INSIDER_USERS, extra=extra)
    return True
