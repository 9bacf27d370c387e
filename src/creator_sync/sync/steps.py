"""The creator_sync DAG's task bodies after the fetch: transform, send, report.

Each step reads what the previous one wrote under the run directory and returns only paths and counts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from creator_sync.sync.run_context import SyncRun

log = logging.getLogger(__name__)

CLIENT_COUNTERS = ("requests", "retries", "rate_limited_429")


def transform_step(run: SyncRun) -> dict[str, Any]:
    from creator_sync.pipeline.transform import transform_run

    result = transform_run(
        run.dir / "fetch",
        start=run.start,
        end=run.end,
        events_from=run.events_from,
        out_dir=run.dir / "transform",
    )
    log.info("transform: %s", result.stats)
    return {
        "users_path": str(result.users_path),
        "rejected_path": str(result.rejected_path),
        "stats_path": str(result.stats_path),
        "users": result.stats.users_written,
        "rejected": result.stats.rejected,
        "events": result.stats.events_written,
    }


def error_callback_endpoint() -> str | None:
    """Insider re-sends users that failed unification here (the webhook plugin's callback route)."""
    base = os.environ.get("CREATOR_SYNC_PUBLIC_BASE_URL", "").rstrip("/")
    return f"{base}/creator-sync/webhooks/insider-errors" if base else None


def send_step(hook, run: SyncRun, transformed: dict[str, Any]) -> dict[str, Any]:
    from creator_sync.pipeline.send import SendReport, send_file
    from creator_sync.pipeline.state import StateStore

    if run.dry_run:
        log.info("dry run: %s users would be sent, nothing is sent or recorded", transformed["users"])
        report = SendReport(rejected=dict(transformed["rejected"]))
        return {"send": report.as_dict(), "client": {}, "dry_run": True}
    report = send_file(
        transformed["users_path"],
        state=StateStore(),
        hook=hook,
        run_id=run.run_id,
        rejected_path=transformed["rejected_path"],
        skip_hook=run.skip_hook,
        error_callback_endpoint=error_callback_endpoint(),
        max_users=int(os.environ.get("CREATOR_SYNC_UPSERT_MAX_USERS", "0")) or None,
    )
    log.info("send (skip_hook=%s): %s; client %s", run.skip_hook, report.as_dict(), hook.stats)
    return {"send": report.as_dict(), "client": hook.stats, "dry_run": False}


def _client_totals(*stats: dict[str, Any] | None) -> dict[str, int]:
    return {key: sum(int((s or {}).get(key, 0)) for s in stats) for key in CLIENT_COUNTERS}


def report_step(run: SyncRun, creators, contents, shards, transformed, sent, context) -> dict[str, Any]:
    from creator_sync.pipeline.report import build_summary
    from creator_sync.pipeline.send import SendReport
    from creator_sync.pipeline.transform import load_stats

    fetch_stats = [creators.get("requests"), contents.get("requests"), *(s.get("requests") for s in shards)]
    insightiq = _client_totals(*fetch_stats)
    insider = _client_totals(sent.get("client"))
    totals = {key: insightiq[key] + insider[key] for key in CLIENT_COUNTERS}
    summary = build_summary(
        run.run_id,
        load_stats(transformed["stats_path"]),
        SendReport(**sent["send"]),
        {"retries": totals["retries"], "rate_limited_429": totals["rate_limited_429"]},
    )
    text = summary.render()
    lookback = ""
    if run.lookback_hours:
        lookback = f", look-back {run.lookback_hours} h: events from {run.events_from:%Y-%m-%d %H:%M}"
    header = (
        f"creator_sync {run.start:%Y-%m-%d %H:%M} .. {run.end:%Y-%m-%d %H:%M} UTC"
        f" (skip_hook={str(run.skip_hook).lower()}{', DRY RUN' if run.dry_run else ''}"
        f"{lookback}"
        f"{', accounts ' + ','.join(run.account_ids) if run.account_ids else ''})"
    )
    requests = f"InsightIQ requests: {insightiq['requests']}, Insider requests: {insider['requests']}"
    text = f"{header}\n{text}\n{requests}"
    log.info("%s", text)
    (run.dir / "report.md").write_text(text + "\n")
    context["outlet_events"][context["outlets"][0]].extra = {
        "run_id": run.run_id,
        "users_path": transformed["users_path"],
        "sent": summary.sent,
    }
    _set_run_note(run, text)
    return {
        **summary.as_dict(),
        "insightiq_requests": insightiq["requests"],
        "insider_requests": insider["requests"],
        "skip_hook": run.skip_hook,
        "dry_run": run.dry_run,
        "lookback_hours": run.lookback_hours,
        "text": text,
    }


def _set_run_note(run: SyncRun, text: str) -> None:
    """Write the report as the DAG run's note through Airflow's REST API when a connection for it exists
    (`creator_sync_airflow_api`: host = API server URL, login/password); tasks never touch the metadata DB."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection("creator_sync_airflow_api")
    except Exception:
        log.info(
            "no creator_sync_airflow_api connection: the report is in this log and XCom, not the run note"
        )
        return
    from creator_sync.airflow_api import AirflowAPI

    try:
        AirflowAPI(conn.host.rstrip("/"), conn.login, conn.password).set_note(
            "creator_sync", run.run_id, text
        )
    except Exception as exc:  # the note is a convenience; the report is already in the log and XCom
        log.warning("could not set the run note: %s", type(exc).__name__)
