"""Insider One operators: the exactly-once upsert of users from JSON Lines, read a profile (web push:
operators/web_push.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.attempt import attempt_key
from creator_sync.hooks.insider import InsiderHook
from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL
from creator_sync.operators._common import as_bool, vendor_defaults


class InsiderUpsertOperator(BaseOperator):
    """Send the users of a JSON Lines file (one ``users[]`` element per line) to Insider exactly once.

    The one sender of creator-sync (creator_sync.pipeline.upsert.upsert): events already acknowledged are
    dropped (ledger), unchanged users skipped, batches of <= ``max_users`` users / 5 MB are upserted, and
    after every answered batch one state-store transaction records its events, attribute hashes and dead
    letters. An unanswered batch (timeout, dropped connection, killed task) is checked with Profile API
    probes by the next attempt instead of being re-sent blindly. Before planning, the run claims the users
    it will send, so a concurrent run never sends the same users at the same time.

    The transform's rejected users (``rejected_path``) and malformed source records (``malformed_path``)
    become dead letters. With ``dry_run`` nothing is sent or written: XCom says what WOULD be sent.
    Insider's error callbacks go to the token-bearing URL of creator_sync.routes.callback (when
    ``CREATOR_SYNC_PUBLIC_BASE_URL`` is set). The client's counters of every attempt are stored per run
    (StateStore.save_client_stats) so the run's report adds retried attempts up.

    :param users_path: templated path of users.jsonl (the transform's output).
    :param rejected_path: / :param malformed_path: templated, optional: the transform's rejects.
    :param clears_path: templated, optional: the transform's clears.jsonl; after the upsert its attributes
        are deleted at Insider in the same budget (creator_sync.pipeline.clear); failures -> dead letters.
    :param skip_hook: templated boolean: Insider's ``skip_hook`` (keep the data out of Architect journeys).
    :param dry_run: templated boolean: plan only.
    :param max_users: users per request below the hook's MAX_USERS_PER_REQUEST (less to probe when an answer
        is lost); default env ``CREATOR_SYNC_UPSERT_MAX_USERS`` or that maximum.
    :param run_id: templated, the run the ledger, dead letters and claims are recorded under.
    :param state_url: the state store URL (default: ``CREATOR_SYNC_STATE_URL`` or SQLite in the data dir).
    :return: ``{"send": SendReport.as_dict(), "clear": ClearReport.as_dict(), "client": request counters,
        "dry_run": bool}``.
    """

    template_fields: Sequence[str] = (
        "users_path",
        "rejected_path",
        "malformed_path",
        "clears_path",
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
        clears_path: Any = None,
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
        self.clears_path = clears_path
        self.skip_hook = skip_hook
        self.dry_run = dry_run
        self.max_users = max_users
        self.run_id = run_id
        self.state_url = state_url
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.pipeline.upsert import SendOptions, upsert

        options = SendOptions(
            users_path=str(self.users_path),
            run_id=self.run_id,
            rejected_path=str(self.rejected_path) if self.rejected_path else None,
            malformed_path=str(self.malformed_path) if self.malformed_path else None,
            clears_path=str(self.clears_path) if self.clears_path else None,
            skip_hook=as_bool(self.skip_hook, "skip_hook"),
            dry_run=as_bool(self.dry_run, "dry_run"),
            max_users=int(self.max_users) if self.max_users else None,
            state_url=self.state_url or None,
            conn_id=self.conn_id,
        )
        return upsert(attempt_key(context), options, log=self.log)


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
