"""Insider One operators: the exactly-once upsert of users from JSON Lines, read a profile (web push:
operators/web_push.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.hooks.base import mask
from creator_sync.hooks.insider import InsiderHook
from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL
from creator_sync.operators._common import Attempt, as_bool, attempt_key, vendor_defaults


def env_max_users() -> int | None:
    """`CREATOR_SYNC_UPSERT_MAX_USERS` (users per upsert request), None = Insider's 1,000."""
    return int(os.environ.get("CREATOR_SYNC_UPSERT_MAX_USERS", "0")) or None


class InsiderUpsertOperator(BaseOperator):
    """Send the users of a JSON Lines file (one ``users[]`` element per line) to Insider exactly once.

    The one sender of creator-sync (creator_sync.pipeline.send.send_file): events already acknowledged are
    dropped (ledger), unchanged users skipped, batches of <= ``max_users`` users / 5 MB are upserted, and
    after every answered batch one state-store transaction records its events, attribute hashes and dead
    letters. An unanswered batch (timeout, dropped connection, killed task) is checked with Profile API
    probes by the next attempt instead of being re-sent blindly. Before planning, the run claims the users
    it will send, so a concurrent run never sends the same users at the same time.

    The transform's rejected users (``rejected_path``) and malformed source records (``malformed_path``)
    become dead letters. With ``dry_run`` nothing is sent or written: XCom says what WOULD be sent.
    Insider's error callbacks go to the token-bearing URL of creator_sync.webhooks.callback (when
    ``CREATOR_SYNC_PUBLIC_BASE_URL`` is set). The client's counters of every attempt are stored per run
    (StateStore.save_client_stats) so the run's report adds retried attempts up.

    :param users_path: templated path of users.jsonl (the transform's output).
    :param rejected_path: / :param malformed_path: templated, optional: the transform's rejects.
    :param skip_hook: templated boolean: Insider's ``skip_hook`` (keep the data out of Architect journeys).
    :param dry_run: templated boolean: plan only.
    :param max_users: users per request below Insider's 1,000 (less to re-check when a request fails);
        default env ``CREATOR_SYNC_UPSERT_MAX_USERS`` or 1,000.
    :param run_id: templated, the run the ledger, dead letters and claims are recorded under.
    :param state_url: the state store URL (default: ``CREATOR_SYNC_STATE_URL`` or SQLite in the data dir).
    :return: ``{"send": SendReport.as_dict(), "client": request counters, "dry_run": bool}``.
    """

    template_fields: Sequence[str] = (
        "users_path",
        "rejected_path",
        "malformed_path",
        "skip_hook",
        "dry_run",
        "run_id",
    )
    ui_color = "#fde68a"
    ui_fgcolor = "#000000"

    def __init__(
        self,
        *,
        users_path: Any,
        rejected_path: Any = None,
        malformed_path: Any = None,
        skip_hook: bool | str = False,
        dry_run: bool | str = False,
        max_users: int | None = None,
        run_id: str = "{{ run_id }}",
        state_url: str | None = None,
        conn_id: str = InsiderHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_UPSERT_POOL))
        self.users_path = users_path
        self.rejected_path = rejected_path
        self.malformed_path = malformed_path
        self.skip_hook = skip_hook
        self.dry_run = dry_run
        self.max_users = max_users
        self.run_id = run_id
        self.state_url = state_url
        self.conn_id = conn_id

    def _max_users(self) -> int | None:
        return int(self.max_users) if self.max_users else env_max_users()

    def execute(self, context) -> dict[str, Any]:
        return upsert_users(
            attempt_key(context),
            users_path=self.users_path,
            rejected_path=self.rejected_path,
            malformed_path=self.malformed_path,
            skip_hook=self.skip_hook,
            dry_run=self.dry_run,
            max_users=self._max_users(),
            run_id=self.run_id,
            state_url=self.state_url,
            conn_id=self.conn_id,
            log=self.log,
        )


def upsert_users(
    attempt: Attempt,
    *,
    users_path: Any,
    run_id: str,
    rejected_path: Any = None,
    malformed_path: Any = None,
    skip_hook: bool | str = False,
    dry_run: bool | str = False,
    max_users: int | None = None,
    state_url: str | None = None,
    conn_id: str = InsiderHook.default_conn_name,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """The exactly-once send of InsiderUpsertOperator (see its doc), for one task attempt (`attempt`: the
    key its client counters are stored under). The operator calls it; so does a task that sends in the same
    process as other steps (creator_sync.sync.targeted). Returns the operator's XCom."""
    from creator_sync.pipeline.send import SendReport, new_fence, send_file
    from creator_sync.store import StateStore
    from creator_sync.webhooks.callback import error_callback_endpoint

    log = log or logging.getLogger(__name__)
    skip_hook, dry_run = as_bool(skip_hook, "skip_hook"), as_bool(dry_run, "dry_run")
    state = StateStore(state_url or None)
    hook = InsiderHook(conn_id)
    callback = error_callback_endpoint(hook.get_connection(conn_id).password)
    mask(callback)
    progress = SendReport()

    def save(report: SendReport) -> None:
        nonlocal progress
        progress = report
        counters = {
            **hook.stats,
            "upserts": 0 if report.dry_run else report.requests,
            "unattributed_errors": report.unattributed_errors,
            "lost_answers": report.lost_answers,
            "in_flight_confirmed": report.in_flight_confirmed,
            "in_flight_resent": report.in_flight_resent,
            "events_already_acknowledged": report.events_already_acknowledged,
        }
        state.save_client_stats(run_id, attempt.task_key, attempt.try_number, hook.vendor, counters)

    try:
        report = send_file(
            users_path,
            state=state,
            hook=hook,
            run_id=run_id,
            rejected_path=rejected_path or None,
            malformed_path=malformed_path or None,
            skip_hook=skip_hook,
            error_callback_endpoint=callback,
            max_users=max_users,
            dry_run=dry_run,
            on_batch=save,
            fence=new_fence(run_id, attempt.try_number),
        )
        save(report)
    except BaseException:
        save(progress)  # a failed attempt's requests and retries still count for the run
        raise
    finally:
        client_stats = hook.stats
        hook.close()
    verb = "would send" if dry_run else "sent"
    log.info(
        "%s%s %d users, %d events in %d requests; unchanged %d; rejected %s; claimed by another run %d "
        "(skip_hook=%s); client %s",
        "DRY RUN: " if dry_run else "",
        verb,
        report.users_sent,
        report.events_sent,
        report.requests,
        report.unchanged,
        report.rejected,
        report.claimed_elsewhere,
        skip_hook,
        client_stats,
    )
    return {"send": report.as_dict(), "client": client_stats, "dry_run": dry_run}


class InsiderProfileOperator(BaseOperator):
    """Read one user's profile (attributes/events) from Insider; returns it (``found`` False if none)."""

    template_fields: Sequence[str] = ("identifiers", "insider_id", "attributes", "events")

    def __init__(
        self,
        *,
        identifiers: dict[str, Any] | None = None,
        insider_id: str | None = None,
        attributes: list[str] | None = None,
        events: dict[str, Any] | None = None,
        conn_id: str = InsiderHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_PROFILE_POOL))
        self.identifiers = identifiers
        self.insider_id = insider_id
        self.attributes = attributes
        self.events = events
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        hook = InsiderHook(self.conn_id)
        try:
            result = hook.get_profile(
                identifiers=self.identifiers or None,
                insider_id=self.insider_id or None,
                attributes=self.attributes or None,
                events=self.events or None,
            )
        finally:
            hook.close()
        self.log.info("Insider profile: found=%s quota=%s", result.found, result.quota)
        return result.as_dict()
