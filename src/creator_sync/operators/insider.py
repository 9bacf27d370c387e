"""Insider One operators: upsert users from JSON Lines, read a profile (web push: operators/web_push.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.files import JsonlWriter, iter_jsonl
from creator_sync.hooks.insider import InsiderHook
from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL
from creator_sync.operators._common import as_bool, vendor_defaults


class InsiderUpsertOperator(BaseOperator):
    """Upsert the users of a JSON Lines file (one ``users[]`` element per line) in planned batches.

    Every user is accounted for: accepted, failed at Insider (per-user ``fail.errors``) or rejected
    locally (too large, not JSON, not an object). Failures and rejections go to ``rejected_path`` as
    JSON Lines ``{"line", "stage", "reasons", "user"}``. Returns counts (never the data).
    """

    template_fields: Sequence[str] = ("input_path", "rejected_path", "skip_hook", "error_callback_endpoint")
    ui_color = "#fde68a"

    def __init__(
        self,
        *,
        input_path: Any,
        rejected_path: Any,
        skip_hook: bool | str = False,
        error_callback_endpoint: str | None = None,
        conn_id: str = InsiderHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_UPSERT_POOL))
        self.input_path = input_path
        self.rejected_path = rejected_path
        self.skip_hook = skip_hook
        self.error_callback_endpoint = error_callback_endpoint
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        skip_hook = as_bool(self.skip_hook, "skip_hook")
        callback = self.error_callback_endpoint or None
        hook = InsiderHook(self.conn_id)
        counts = {"users": 0, "requests": 0, "sent": 0, "accepted": 0, "failed": 0, "rejected_locally": 0}
        line_of: dict[int, int] = {}  # stream index -> file line, for the current batch only
        try:
            with JsonlWriter(self.rejected_path) as rejected:

                def users() -> Iterator[dict[str, Any]]:
                    index = 0
                    for line, value, error in iter_jsonl(self.input_path):
                        counts["users"] += 1
                        if error is None and not isinstance(value, dict):
                            error = f"line {line} is a JSON {type(value).__name__}, not a user object"
                        if error is not None:
                            counts["rejected_locally"] += 1
                            rejected.write(
                                {"line": line, "stage": "local", "reasons": [error], "user": value}
                            )
                            continue
                        line_of[index] = line
                        index += 1
                        yield value

                for batch in hook.plan_batches(users(), error_callback_endpoint=callback):
                    if batch.rejected:
                        counts["rejected_locally"] += 1
                        rejected.write(
                            {
                                "line": line_of.pop(batch.indices[0]),
                                "stage": "local",
                                "reasons": [batch.reason],
                                "user": batch.users[0],
                            }
                        )
                        continue
                    result = hook.upsert_batch(batch, skip_hook=skip_hook, error_callback_endpoint=callback)
                    counts["requests"] += 1
                    counts["sent"] += result.sent
                    counts["accepted"] += result.accepted
                    counts["failed"] += len(result.failed)
                    for local, reasons in sorted(result.failed.items()):
                        rejected.write(
                            {
                                "line": line_of.get(batch.indices[local]),
                                "stage": "insider",
                                "reasons": reasons,
                                "user": batch.users[local],
                            }
                        )
                    if result.unattributed_errors:
                        lines = [line_of.get(i) for i in batch.indices]
                        self.log.warning(
                            "Insider reported errors not tied to a user for lines %s..%s: %s",
                            lines[0],
                            lines[-1],
                            result.unattributed_errors,
                        )
                        rejected.write(
                            {
                                "line": None,
                                "lines": [lines[0], lines[-1]],
                                "stage": "insider-batch",
                                "reasons": [f"{k}: {v}" for k, v in result.unattributed_errors.items()],
                                "user": None,
                            }
                        )
                    for i in batch.indices:
                        line_of.pop(i, None)
            counts["http"] = hook.stats
        finally:
            hook.close()
        counts["rejected_path"] = str(self.rejected_path)
        self.log.info("Upsert finished: %s", counts)
        return counts


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
