"""The exactly-once upsert of one task attempt: the one entry point the Insider upsert operator, the replay
DAG and a targeted run's fast path call. ``SendOptions`` carries what a send needs; ``upsert`` opens the state
store and the Insider hook, runs the sender (creator_sync.pipeline.send) under the attempt's fencing token,
and stores the attempt's client counters per run so the run's report adds retried attempts up."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from creator_sync import settings
from creator_sync.attempt import Attempt
from creator_sync.hooks.base import mask
from creator_sync.hooks.insider import InsiderHook
from creator_sync.pipeline.clear import ClearReport, clear_file
from creator_sync.pipeline.send import SendReport, new_fence, send_file
from creator_sync.store import StateStore


def env_max_users() -> int | None:
    """``CREATOR_SYNC_UPSERT_MAX_USERS`` (users per upsert request), None = the hook's documented maximum."""
    return settings.current().upsert_max_users or None


@dataclass(frozen=True)
class SendOptions:
    """One send: the users file and the transform's rejects, Insider's ``skip_hook``, whether it is a dry run,
    users per request (None: ``CREATOR_SYNC_UPSERT_MAX_USERS`` or the hook's maximum), the run it is recorded
    under, the state store URL (None: the default) and the Insider connection."""

    users_path: str
    run_id: str
    rejected_path: str | None = None
    malformed_path: str | None = None
    skip_hook: bool = False
    dry_run: bool = False
    max_users: int | None = None
    state_url: str | None = None
    conn_id: str = InsiderHook.default_conn_name
    clears_path: str | None = None  # the transform's clears.jsonl, sent after the upsert (pipeline.clear)


def _counters(hook: InsiderHook, report: SendReport, cleared: ClearReport | None = None) -> dict[str, Any]:
    return {
        **(cleared.counters() if cleared is not None else {}),
        **hook.stats,
        "upserts": 0 if report.dry_run else report.requests,
        "unattributed_errors": report.unattributed_errors,
        "lost_answers": report.lost_answers,
        "in_flight_confirmed": report.in_flight_confirmed,
        "in_flight_resent": report.in_flight_resent,
        "events_already_acknowledged": report.events_already_acknowledged,
    }


def upsert(attempt: Attempt, options: SendOptions, log: logging.Logger | None = None) -> dict[str, Any]:
    """Send ``options.users_path`` exactly once for one task attempt; returns the operator's XCom:
    ``{"send": SendReport.as_dict(), "client": request counters, "dry_run": bool}``."""
    from creator_sync.routes.callback import error_callback_endpoint

    log = log or logging.getLogger(__name__)
    state = StateStore(options.state_url)
    hook = InsiderHook(options.conn_id)
    callback = error_callback_endpoint(hook.get_connection(options.conn_id).password)
    mask(callback)
    progress = SendReport()

    def save(report: SendReport, cleared: ClearReport | None = None) -> None:
        nonlocal progress
        progress = report
        counters = _counters(hook, report, cleared)
        state.save_client_stats(options.run_id, attempt.task_key, attempt.try_number, hook.vendor, counters)

    try:
        report = send_file(
            options.users_path,
            state=state,
            hook=hook,
            run_id=options.run_id,
            rejected_path=options.rejected_path,
            malformed_path=options.malformed_path,
            skip_hook=options.skip_hook,
            error_callback_endpoint=callback,
            max_users=options.max_users or env_max_users(),
            dry_run=options.dry_run,
            on_batch=save,
            fence=new_fence(options.run_id, attempt.try_number),
        )
        save(report)
        # after the upsert: the clears name only attributes this run does not set (pipeline.clearing).
        # Without a clears file no clear pass is recorded (the report says the upsert sent no clears).
        cleared = None
        if options.clears_path:
            cleared = clear_file(
                options.clears_path, hook=hook, state=state, run_id=options.run_id, dry_run=options.dry_run
            )
            save(report, cleared)
    except BaseException:
        save(progress)  # a failed attempt's requests and retries still count for the run
        raise
    finally:
        client_stats = hook.stats
        hook.close()
    _log_summary(log, report, options, client_stats)
    if cleared is not None:
        log.info("clear: %s", cleared.as_dict())
    return {
        "send": report.as_dict(),
        "clear": cleared.as_dict() if cleared is not None else None,
        "client": client_stats,
        "dry_run": options.dry_run,
    }


def _log_summary(log: logging.Logger, report: SendReport, options: SendOptions, client_stats: dict) -> None:
    log.info(
        "%s%s %d users, %d events in %d requests; unchanged %d; rejected %s; claimed by another run %d "
        "(skip_hook=%s); client %s",
        "DRY RUN: " if options.dry_run else "",
        "would send" if options.dry_run else "sent",
        report.users_sent,
        report.events_sent,
        report.requests,
        report.unchanged,
        report.rejected,
        report.claimed_elsewhere,
        options.skip_hook,
        client_stats,
    )
