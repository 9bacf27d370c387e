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
    """Point the task log at the report in the Airflow UI, and write it as the run note where allowed.

    Airflow 3.3 gives a task no sanctioned way to set its own DAG run's note (the Task SDK's execution
    API can set a note only when it triggers a new run). The report is therefore shown by the project's
    UI plugin: the "Sync report" tab of this run's page and the "Creator sync" view; this log names the
    link. A deployment that also wants the note creates the `creator_sync_airflow_api` connection (host =
    API server URL, login/password of an Airflow user allowed to edit DAG runs; `make demo` does): the
    note is then written through the public REST API.
    """
    from urllib.parse import quote

    from airflow.sdk import BaseHook
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    log.info(
        "run report in the Airflow UI: %s/creator-sync-ui/runs/creator_sync/%s (the run's Sync report tab)",
        base,
        quote(run.run_id, safe=""),
    )
    try:
        conn = BaseHook.get_connection("creator_sync_airflow_api")
    except Exception:
        return
    import httpx

    api = conn.host.rstrip("/")
    try:
        token = httpx.post(f"{api}/auth/token", json={"username": conn.login, "password": conn.password})
        token.raise_for_status()
        httpx.patch(
            f"{api}/api/v2/dags/creator_sync/dagRuns/{quote(run.run_id, safe='')}",
            json={"note": text[:1000]},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        ).raise_for_status()
    except Exception as exc:  # the note is a convenience; the report is in the view, this log and XCom
        log.warning("could not set the run note: %s", type(exc).__name__)
