"""InsightIQ -> Parquet fetch operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.files import DEFAULT_CHUNK_ROWS, write_records_parquet
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
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
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
        hook = InsightIQHook(self.conn_id)
        try:
            records = hook.iter_records(
                self.resource,
                from_date=self.from_date or None,
                to_date=self.to_date or None,
                **(self.filters or {}),
            )
            count = write_records_parquet(records, self.output_path, chunk_rows=self.chunk_rows)
            stats = hook.stats
        finally:
            hook.close()
        self.log.info("Wrote %d %s records to %s (http: %s)", count, self.resource, self.output_path, stats)
        return {"path": str(self.output_path), "count": count, "http": stats}
