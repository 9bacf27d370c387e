"""How `GET /v1/social/contents` is read: once over all accounts, or per account.

The sources disagree (docs/vendor-contract.md): the Postman collection lists `account_id` without saying
whether it is required; the compiled webhook-events reference (insightiq-webhook-events.md, "Do the users /
accounts / profiles list endpoints support an updated-since filter?") marks it **required**. The project
works under either reading:

- ``all_accounts``: one date-filtered list over every account per run (the cheapest read);
- ``per_account``: the list per account (`account_id`), inside the account shards of a full read, through the
  planner's rotating per-account sweep in an incremental run (creator_sync.sync.plan.plan_hourly) and per
  account of a targeted run (the webhooks name the accounts whose contents changed);
- ``auto`` (default): ``all_accounts`` until InsightIQ answers a 400 that asks for `account_id`; that answer
  switches the connection to ``per_account`` and the switch is remembered per connection
  (``<data root>/state/contents_read/<conn_id>.json``), so every later run reads per account at once.

The InsightIQ connection extra ``contents_read`` forces a mode (``all_accounts`` | ``per_account``; empty or
``auto``: the switch above). Within one run every task uses the mode the run started with (the first task to
ask records it in ``<run>/contents_read.json``), so the shards and the contents task never both read the
contents of a run, even when the switch happens during it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from creator_sync import files, storage
from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.errors import VendorBadRequestError, VendorError

log = logging.getLogger(__name__)

CONTENTS_READ_EXTRA = "contents_read"
AUTO, ALL_ACCOUNTS, PER_ACCOUNT = "auto", "all_accounts", "per_account"
MODES = (AUTO, ALL_ACCOUNTS, PER_ACCOUNT)
RUN_FILE = "contents_read.json"
STATE_DIR = ("state", "contents_read")
# An engagement status under which an account has no contents at all (every other status is read).
NO_CONTENTS_STATUS = "NOT_SUPPORTED"


def setting(extra: dict[str, Any] | None, conn_id: str) -> str:
    """The connection's ``contents_read`` extra (empty: ``auto``); a clear error for any other value."""
    raw = (extra or {}).get(CONTENTS_READ_EXTRA)
    value = str(raw).strip().lower() if raw not in (None, "") else AUTO
    if value not in MODES:
        raise CreatorSyncConfigError(
            f"connection '{conn_id}': extra {CONTENTS_READ_EXTRA!r} must be one of {', '.join(MODES)} "
            f"(empty = {AUTO}), got {raw!r}; fix it in the connection's Extra field"
        )
    return value


def asks_for_account_id(exc: VendorError) -> bool:
    """A 400 from the contents list whose message names `account_id` (InsightIQ requires it)."""
    return (
        isinstance(exc, VendorBadRequestError)
        and exc.status == 400
        and ("account_id" in (exc.vendor_message or "").lower())
    )


def has_contents(account: dict[str, Any]) -> bool:
    """False only for an account whose engagement product is NOT_SUPPORTED (it has no contents)."""
    engagement = (account.get("data") or {}).get("engagement")
    return not (isinstance(engagement, dict) and engagement.get("status") == NO_CONTENTS_STATUS)


def _state_path(conn_id: str):
    path = storage.data_root()
    for part in STATE_DIR:
        path = path / part
    return storage.ensure_dir(path) / f"{conn_id}.json"


def remembered(conn_id: str) -> dict[str, Any] | None:
    """The switch remembered for connection ``conn_id`` (None when there is none)."""
    path = _state_path(conn_id)
    try:
        with files.open_input(path, "r") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def remember(conn_id: str, reason: str) -> None:
    """Switch connection ``conn_id`` to per-account reads for every later run."""
    record = {"mode": PER_ACCOUNT, "since": datetime.now(UTC).isoformat(), "reason": reason}
    with files.open_output(_state_path(conn_id), "w") as fh:
        json.dump(record, fh)
    log.warning("InsightIQ connection %s: every later run reads contents per account (%s)", conn_id, reason)


def forget(conn_id: str) -> None:
    """Drop the remembered switch (an operator whose InsightIQ answers the all-accounts list again)."""
    path = _state_path(conn_id)
    if storage.is_local(path):
        storage.local_path(path).unlink(missing_ok=True)
    elif path.exists():
        path.unlink()


def connection_mode(conn_id: str, extra: dict[str, Any] | None) -> str:
    """``all_accounts`` or ``per_account`` for the connection: forced by the extra, else remembered."""
    forced = setting(extra, conn_id)
    if forced != AUTO:
        return forced
    record = remembered(conn_id)
    return PER_ACCOUNT if record and record.get("mode") == PER_ACCOUNT else ALL_ACCOUNTS


def run_mode(run_dir, conn_id: str, extra: dict[str, Any] | None) -> str:
    """The mode of the run in ``run_dir``: the one recorded by its first task, else the connection's mode
    (which is then recorded for the run's other tasks)."""
    path = run_dir / RUN_FILE
    try:
        with files.open_input(path, "r") as fh:
            return json.load(fh)["mode"]
    except FileNotFoundError:
        pass
    mode = connection_mode(conn_id, extra)
    storage.ensure_dir(run_dir)
    with files.open_output(path, "w") as fh:
        json.dump({"mode": mode}, fh)
    return mode


def forced(hook) -> str | None:
    """The mode the hook's connection forces (None: ``auto``)."""
    hook.client  # noqa: B018 - reads the connection
    value = setting(hook._connection.extra_dejson or {}, hook.conn_id)
    return None if value == AUTO else value


def for_hook(hook, run_dir) -> str:
    """`run_mode` for an InsightIQHook's connection."""
    hook.client  # noqa: B018 - reads the connection
    return run_mode(run_dir, hook.conn_id, hook._connection.extra_dejson or {})
