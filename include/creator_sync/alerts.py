"""Alerts through Airflow's notifier interface: a failed task, a run that outlived its interval, or a notice
a task raises itself (kind ``notice``: the context's ``notice`` holds ``subject`` and ``rows``, e.g. an
InsightIQ webhook found deactivated and re-enabled).

`CREATOR_SYNC_ALERT_CONN_ID` names one Airflow connection; unset = no alerts. Its type decides the channel:

- `smtp` (the SMTP provider's connection): an e-mail through the provider's `SmtpNotifier`. Recipients in the
  connection's extra `to` (a list or comma-separated), sender in extra `from_email`.
- `slackwebhook` or `http`: a JSON POST `{"text": ...}` to the webhook URL (a Slack incoming webhook, or any
  endpoint taking that body). The URL is the connection's password when that is a full URL (Slack's
  secret webhook URL), else its host (+ the password appended as the path's secret part).

The message names the DAG, the run, the task and the link to its log; never a connection's secret.
"""

from __future__ import annotations

import asyncio
import html
import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

ALERT_CONN_ENV = "CREATOR_SYNC_ALERT_CONN_ID"
SMTP_TYPES = ("smtp", "email")
WEBHOOK_TYPES = ("slackwebhook", "slack_webhook", "http", "https")


def alert_conn_id() -> str | None:
    from creator_sync import settings

    return settings.current().alert_conn_id


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def describe(context: dict, kind: str) -> tuple[str, list[tuple[str, str]]]:
    """(subject, [(label, value)]) of a failure (task context) or a missed deadline (deadline context)."""
    ti, dag_run = context.get("ti") or context.get("task_instance"), context.get("dag_run")
    dag_id = _get(ti, "dag_id") or _get(dag_run, "dag_id") or "?"
    run_id = _get(ti, "run_id") or _get(dag_run, "run_id") or _get(dag_run, "dag_run_id") or "?"
    if kind == "notice":
        notice = context.get("notice") or {}
        rows = [("DAG", dag_id), ("Run", run_id), *[(str(k), str(v)) for k, v in notice.get("rows", [])]]
        return f"[creator-sync] {notice.get('subject', dag_id)}", rows
    if kind == "deadline":
        deadline = context.get("deadline") or {}
        rows = [
            ("DAG", dag_id),
            ("Run", run_id),
            ("State", str(_get(dag_run, "state") or "?")),
            ("Queued at", str(_get(dag_run, "queued_at") or "?")),
            ("Deadline", str(_get(deadline, "deadline_time") or "?")),
        ]
        return f"[creator-sync] {dag_id} run {run_id} outlived its interval", rows
    task_id = _get(ti, "task_id") or "?"
    map_index = _get(ti, "map_index")
    if map_index is not None and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    error = context.get("exception")
    rows = [
        ("DAG", dag_id),
        ("Run", run_id),
        ("Task", task_id),
        ("Try", str(_get(ti, "try_number") or "?")),
        ("Error", f"{type(error).__name__}: {error}"[:2000] if error else "?"),
        ("Log", str(_get(ti, "log_url") or "?")),
    ]
    return f"[creator-sync] {dag_id} task {task_id} failed (run {run_id})", rows


def as_text(subject: str, rows: list[tuple[str, str]]) -> str:
    return "\n".join([subject, *(f"{label}: {value}" for label, value in rows)])


def as_html(subject: str, rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(label)}</td><td>"
        + (
            f'<a href="{html.escape(value)}">{html.escape(value)}</a>'
            if value.startswith(("http://", "https://"))
            else html.escape(value)
        )
        + "</td></tr>"
        for label, value in rows
    )
    return f"<p>{html.escape(subject)}</p><table>{cells}</table>"


def webhook_url(conn) -> str:
    password = conn.password or ""
    if password.startswith(("http://", "https://")):
        return password
    host = (conn.host or "").rstrip("/")
    if not host.startswith(("http://", "https://")):
        host = f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")
    return f"{host}/{password.lstrip('/')}" if password else host


class CreatorSyncAlert(BaseNotifier):
    """Failure callback (`on_failure_callback`) and Deadline Alert callback (run in the triggerer, which
    constructs it with `context=` and awaits it) sending to the connection named by `conn_id`."""

    template_fields = ()

    def __init__(self, conn_id: str | None = None, kind: str = "failure", context: dict | None = None):
        super().__init__(context=context)
        self.conn_id = conn_id or alert_conn_id()
        self.kind = kind

    def notify(self, context) -> None:
        if not self.conn_id:
            return
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.conn_id)
        subject, rows = describe(dict(context), self.kind)
        if conn.conn_type in SMTP_TYPES:
            self._email(conn, context, subject, rows)
        elif conn.conn_type in WEBHOOK_TYPES:
            self._webhook(conn, subject, rows)
        else:
            raise ValueError(
                f"connection {self.conn_id!r} ({ALERT_CONN_ENV}) has type {conn.conn_type!r}; alerts need an "
                f"smtp connection (e-mail) or a slackwebhook/http one (webhook)"
            )
        log.info("alert sent to connection %s: %s", self.conn_id, subject)

    async def async_notify(self, context) -> None:
        await asyncio.to_thread(self.notify, context)

    def _email(self, conn, context, subject: str, rows: list[tuple[str, str]]) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        extra = conn.extra_dejson
        to = extra.get("to") or extra.get("recipients")
        if isinstance(to, str):
            to = [a.strip() for a in to.split(",") if a.strip()]
        if not to:
            raise ValueError(
                f"SMTP connection {self.conn_id!r} names no recipient: set its extra "
                f'{{"to": ["ops@example.com"], "from_email": "airflow@example.com"}}'
            )
        # subject and body are final text (no Jinja: an error message may contain braces)
        SmtpNotifier(
            to=to,
            from_email=extra.get("from_email"),
            subject=subject,
            html_content=as_html(subject, rows),
            smtp_conn_id=self.conn_id,
        ).notify(context)

    def _webhook(self, conn, subject: str, rows: list[tuple[str, str]]) -> None:
        import httpx

        response = httpx.post(webhook_url(conn), json={"text": as_text(subject, rows)}, timeout=30)
        if response.status_code >= 400:  # the URL holds the webhook's secret: never put it in the error
            raise RuntimeError(
                f"alert webhook of connection {self.conn_id!r} answered HTTP {response.status_code}"
            )
