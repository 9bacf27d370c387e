"""Insider profile audit operator: read back a sample of the users a creator_sync run sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.audit.profile_audit import audit_run
from creator_sync.limits import INSIDER_PROFILE_POOL
from creator_sync.operators._common import as_int, as_list, vendor_defaults

DEFAULT_ATTRIBUTES = ("uuid", "email", "phone_number", "name", "surname", "language", "country", "city")


class InsiderProfileAuditOperator(BaseOperator):
    """Compare what Insider holds with what the triggering creator_sync run sent; XCom: a summary.

    Runs on the creator_sync users Asset: the triggering asset events name the run's users file, of which
    ``sample_size`` users are read back through the User Profile API (at most ``max_quota_units`` quota
    units). With ``identifier`` set, prints that one profile instead.

    :param identifier: templated; manual look-up of one user (empty = audit the triggering run).
    :param identifier_type: templated: ``uuid``, ``email`` or ``phone_number``.
    :param attributes: templated list of attributes for the manual look-up (custom ones with ``c_``).
    :param sample_size: templated number of users to audit.
    :param max_quota_units: templated Profile API quota budget of the audit.
    :param conn_id: an ``insider`` connection (default ``insider_default``).
    """

    template_fields: Sequence[str] = (
        "identifier",
        "identifier_type",
        "attributes",
        "sample_size",
        "max_quota_units",
    )
    ui_color = "#fde68a"

    def __init__(
        self,
        *,
        identifier: str | None = None,
        identifier_type: str = "uuid",
        attributes: Sequence[str] | str = DEFAULT_ATTRIBUTES,
        sample_size: int | str = 20,
        max_quota_units: float | str = 500,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_PROFILE_POOL))
        self.identifier = identifier
        self.identifier_type = identifier_type
        self.attributes = attributes
        self.sample_size = sample_size
        self.max_quota_units = max_quota_units
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        params = {
            "identifier": (self.identifier or "").strip() or None,
            "identifier_type": self.identifier_type,
            "attributes": as_list(self.attributes, "attributes"),
            "sample_size": as_int(self.sample_size, "sample_size", minimum=1),
            "max_quota_units": float(self.max_quota_units),
        }
        from creator_sync.hooks.insider import InsiderHook

        hook = InsiderHook(self.conn_id)
        try:
            return audit_run(hook, params, context.get("triggering_asset_events"), context.get("run_id"))
        finally:
            hook.close()
