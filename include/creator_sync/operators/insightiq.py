"""InsightIQ -> Parquet fetch operators.

- ``InsightIQFetchOperator``: one list resource into one Parquet file (general purpose).
- The creator_sync fetch family (``InsightIQCreatorsFetchOperator``, ``InsightIQContentsFetchOperator``,
  ``InsightIQAccountShardFetchOperator``): the reads of one creator_sync run, planned to spend as few
  requests as the API allows (creator_sync.sync.fetch). The run (data interval, look-back, account filter)
  comes from the task's context and Params (creator_sync.sync.run_context.SyncRun); files land under the
  run directory, XCom gets paths, counts and the request counters. Each attempt's request counters are also
  stored per run (StateStore.save_client_stats) so the run's report adds retried attempts up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.attempt import attempt_key
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.limits import INSIGHTIQ_POOL
from creator_sync.operators._common import vendor_defaults


class InsightIQFetchOperator(BaseOperator):
    """Page one InsightIQ list resource into a Parquet file; XCom gets ``{"path", "count", "http"}``.

    :param resource: a key of ``creator_sync.hooks.insightiq.RESOURCES`` (e.g. ``contents``).
    :param from_date: / :param to_date: templated, e.g. ``"{{ data_interval_start | ds }}"``.
    :param filters: extra query parameters (``account_id``, ``user_id``, ``work_platform_id``, ...).
    :param output_path: templated local path, URL or ObjectStoragePath of the Parquet file.
    """

    template_fields: Sequence[str] = ("resource", "from_date", "to_date", "filters", "output_path")
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        resource: str,
        output_path: Any,
        from_date: str | None = None,
        to_date: str | None = None,
        filters: dict[str, Any] | None = None,
        conn_id: str = InsightIQHook.default_conn_name,
        chunk_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIGHTIQ_POOL))
        self.resource = resource
        self.from_date = from_date
        self.to_date = to_date
        self.filters = filters or {}
        self.output_path = output_path
        self.conn_id = conn_id
        self.chunk_rows = chunk_rows

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.files import DEFAULT_CHUNK_ROWS, write_records_parquet  # pandas: not at parse time

        hook = InsightIQHook(self.conn_id)
        try:
            records = hook.iter_records(
                self.resource,
                from_date=self.from_date or None,
                to_date=self.to_date or None,
                **(self.filters or {}),
            )
            chunk_rows = self.chunk_rows or DEFAULT_CHUNK_ROWS
            count = write_records_parquet(records, self.output_path, chunk_rows=chunk_rows)
            stats = hook.stats
        finally:
            hook.close()
        self.log.info("Wrote %d %s records to %s (http: %s)", count, self.resource, self.output_path, stats)
        return {"path": str(self.output_path), "count": count, "http": stats}


class _SyncFetchOperator(BaseOperator):
    """Base of the creator_sync fetch family: `fetch(hook, run)` returns paths and counts."""

    template_fields: Sequence[str] = ("run_id", "state_url")
    ui_color = "#dbeafe"
    ui_fgcolor = "#000000"

    def __init__(
        self,
        *,
        conn_id: str = InsightIQHook.default_conn_name,
        run_id: str = "{{ run_id }}",
        state_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIGHTIQ_POOL))
        self.conn_id = conn_id
        self.run_id = run_id
        self.state_url = state_url

    def fetch(self, hook: InsightIQHook, run) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.store import StateStore
        from creator_sync.sync.run_context import SyncRun

        run = SyncRun.from_context(context)
        hook = InsightIQHook(self.conn_id)
        attempt = attempt_key(context)
        try:
            result = self.fetch(hook, run)
        finally:
            stats = hook.stats
            StateStore(self.state_url or None).save_client_stats(
                self.run_id, attempt.task_key, attempt.try_number, hook.vendor, stats
            )
            hook.close()
        self.log.info("%s: %s", type(self).__name__, {k: v for k, v in result.items() if k != "requests"})
        return result


class InsightIQCreatorsFetchOperator(_SyncFetchOperator):
    """Users and profiles of every creator in the run's scope (all, or its ``account_ids``) -> Parquet."""

    def fetch(self, hook: InsightIQHook, run) -> dict[str, Any]:
        from creator_sync.sync.fetch import fetch_directory

        return fetch_directory(hook, run)


class InsightIQContentsFetchOperator(_SyncFetchOperator):
    """The content items of the run's event window (one date-filtered list over all accounts) -> Parquet."""

    def fetch(self, hook: InsightIQHook, run) -> dict[str, Any]:
        from creator_sync.sync.fetch import fetch_contents

        return fetch_contents(hook, run)


class InsightIQAccountShardFetchOperator(_SyncFetchOperator):
    """Shard ``shard`` of ``of`` of the accounts, their income transactions and (targeted syncs) audience.

    Mapped one task per ``insightiq_api`` pool slot but the one the creators and contents fetches take in
    turn: ``.partial(of=n).expand(shard=range(n))``."""

    template_fields: Sequence[str] = (*_SyncFetchOperator.template_fields, "shard", "of")

    def __init__(self, *, shard: int, of: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.of = of

    def fetch(self, hook: InsightIQHook, run) -> dict[str, Any]:
        from creator_sync.sync.fetch import fetch_account_shard

        return fetch_account_shard(hook, run, int(self.shard), int(self.of))
