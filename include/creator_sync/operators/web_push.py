"""Insider One Web Push operator: create a Single Push campaign (Draft) from templated fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.limits import INSIDER_WEB_PUSH_POOL
from creator_sync.operators._common import as_bool, vendor_defaults


class InsiderWebPushOperator(BaseOperator):
    """Create a Single Web Push campaign; XCom: ``{"campaign_id", "title", "language", "is_all"}``.

    :param title: templated; unique at Insider (1..100 characters).
    :param language: templated, e.g. ``en_US``; ``all_ALL`` = every language.
    :param is_all: templated boolean: send to all subscribers (once, visible in the InOne panel).
    :param conn_id: an ``insider_web_push`` connection (default ``insider_web_push_default``).

    An existing title fails the task without retries (``WebPushTitleExistsError`` is permanent). When an
    earlier try of this task may have created the campaign (its answer was lost), the error says so.
    """

    template_fields: Sequence[str] = ("title", "language", "is_all")
    ui_color = "#fde68a"

    def __init__(
        self,
        *,
        title: str,
        language: str,
        is_all: bool | str = False,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_WEB_PUSH_POOL))
        self.title = title
        self.language = language
        self.is_all = is_all
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.hooks.web_push import (
            InsiderWebPushHook,
            WebPushCreateUnconfirmedError,
            WebPushTitleExistsError,
        )

        is_all = as_bool(self.is_all, "is_all")
        hook = InsiderWebPushHook(self.conn_id)
        try:
            campaign_id = hook.create_single_push(self.title, self.language, is_all)
        except WebPushTitleExistsError as exc:
            ti = context.get("ti")
            if isinstance(exc, WebPushCreateUnconfirmedError) or not ti or ti.try_number <= 1:
                raise
            raise exc.recast(
                WebPushCreateUnconfirmedError,
                f"{exc}. This is try {ti.try_number}: an earlier try may have created the campaign before "
                "it failed; look for the title on the InOne Web Push listing (status Draft)",
            ) from exc
        finally:
            hook.close()
        self.log.info(
            "Created web push campaign %s (%r, %s, is_all=%s)", campaign_id, self.title, self.language, is_all
        )
        return {"campaign_id": campaign_id, "title": self.title, "language": self.language, "is_all": is_all}
