"""InsightIQ onboarding operator: find or create one creator's user, issue an SDK token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.limits import INSIGHTIQ_POOL
from creator_sync.operators._common import as_list, vendor_defaults
from creator_sync.vendor_rules import INSIGHTIQ_PRODUCTS as PRODUCTS


def token_fingerprint(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class InsightIQOnboardCreatorOperator(BaseOperator):
    """Find (by ``external_id``) or create the InsightIQ user, then issue an SDK token for ``products``.

    :param name: templated creator name (used when the user is created).
    :param external_id: templated; our id of the creator, the user's look-up key.
    :param products: templated list, a subset of ``PRODUCTS``.
    :param conn_id: an ``insightiq`` connection (default ``insightiq_default``).

    The token is registered with the secrets masker and never returned: the XCom holds the user id, the
    expiry and a token fingerprint only. A user create whose answer was lost is settled by looking the user
    up by external id (``InsightIQHook.create_user``), so a retry never creates a second user.
    """

    template_fields: Sequence[str] = ("name", "external_id", "products")
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        name: str,
        external_id: str,
        products: Sequence[str] | str = ("IDENTITY", "ENGAGEMENT"),
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIGHTIQ_POOL))
        self.name = name
        self.external_id = external_id
        self.products = products
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        products = list(dict.fromkeys(as_list(self.products, "products")))
        unknown = sorted(set(products) - set(PRODUCTS))
        if unknown or not products:
            raise CreatorSyncConfigError(
                f"products must be a non-empty subset of {PRODUCTS}; unknown: {unknown}"
            )
        if not self.external_id or not self.name:
            raise CreatorSyncConfigError("name and external_id are required")
        from creator_sync.hooks.base import mask
        from creator_sync.hooks.insightiq import InsightIQHook

        hook = InsightIQHook(self.conn_id)
        try:
            user, created = hook.ensure_user(self.name, self.external_id)
            issued = hook.create_sdk_token(user["id"], products)
        finally:
            hook.close()
        token = issued.get("sdk_token") or ""
        mask(token)
        fingerprint = token_fingerprint(token) if token else None
        self.log.info(
            "InsightIQ user %s (%s, external_id %s): SDK token issued for %s, expires %s, fingerprint %s",
            user["id"],
            "created" if created else "existing",
            self.external_id,
            ",".join(products),
            issued.get("expires_at"),
            fingerprint,
        )
        return {
            "user_id": user["id"],
            "external_id": self.external_id,
            "created": created,
            "products": products,
            "expires_at": issued.get("expires_at"),
            "token_fingerprint": fingerprint,
        }
