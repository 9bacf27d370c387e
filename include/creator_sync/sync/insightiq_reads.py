"""The primitive InsightIQ reads of a sync run, each writing its records to a Parquet file of the run.

Every fetch strategy (creator_sync.sync.full_fetch, targeted_fetch, incremental_fetch, backfill) builds on
these; this module imports no strategy and no engine (creator_sync.sync.fetch picks the strategy):

- `day_range`: the whole days of the run's event window, as InsightIQ filters by; `contents_day_range`:
  those of its contents window (a targeted run's covers the engagement window);
- `shard_accounts`: one shard's accounts (every n-th page of the accounts list, or of the account filter);
- `directory_files`: the users and profiles files of a directory read;
- `shard_files`: an account shard's files (accounts, income transactions and payouts, audience,
  per-account contents);
- `all_accounts_contents`, `contents_per_account`, `no_contents`: the run's contents, read once over all
  accounts or per account (creator_sync.sync.contents_read decides which), or read elsewhere;
- `INCOME_SYNCED`, `account_status`: whether an account's income (transactions, payouts) is read;
- `Refusals`: a per-account read InsightIQ refuses (a 400) for an account whose own record is not
  CONNECTED is no data for that account in this run: the read goes on, the account is named in the shard's
  `refused` figures and `<run>/fetch/refused/<task>.json` (the run report's `refused_accounts`). A
  refusal for a CONNECTED account fails the read. On reconnect the ACCOUNTS.CONNECTED webhook reopens the
  account's history (creator_sync.store.history.reconnect_update), which re-reads the gap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

from creator_sync.files import write_records_parquet
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.http.errors import VendorBadRequestError, VendorError, VendorNotFoundError
from creator_sync.http.paging import DEFAULT_PAGE_LIMIT
from creator_sync.progress import client_requests, track
from creator_sync.sync import contents_read
from creator_sync.sync.run_context import SyncRun

log = logging.getLogger(__name__)

INCOME_SYNCED = {"SYNCED", "PARTIAL_SYNCED"}
CONNECTED = "CONNECTED"
REFUSED_DIR = "refused"
# the income files of an account shard (fetch/<name>/) -> the InsightIQ list read per income-synced account
INCOME_FILES = {"transactions": "social_transactions", "payouts": "social_payouts"}


def day_range(run: SyncRun) -> tuple[str, str]:
    """The days of the run's event window [events_from, end) (= [start, end) without a look-back).

    InsightIQ filters by whole days; the transform keeps only timestamps inside the window."""
    return run.events_from.date().isoformat(), (run.end - timedelta(microseconds=1)).date().isoformat()


def contents_day_range(run: SyncRun) -> tuple[str, str]:
    """The days of the run's contents window [contents_from, end) (SyncRun.contents_from: a targeted run's
    reaches back over the engagement window)."""
    return run.contents_from.date().isoformat(), (run.end - timedelta(microseconds=1)).date().isoformat()


def write(records: Iterable[dict[str, Any]], directory, name: str) -> dict[str, Any]:
    """`records` -> `<directory>/<name>.parquet`; returns its path and row count."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.parquet"
    return {"path": str(path), "count": write_records_parquet(records, path)}


def account_status(account: dict[str, Any], *product: str) -> str | None:
    """`data.<product...>.status` of an account (the per-product sync status)."""
    node: Any = account.get("data")
    for key in product:
        node = node.get(key) if isinstance(node, dict) else None
    return node.get("status") if isinstance(node, dict) else None


def refusal_errors() -> tuple[type[Exception], ...]:
    """The errors by which InsightIQ refuses one account's request (a 400, e.g. `account_not_connected` for
    a disconnected account); a test switches this guard off."""
    return (VendorBadRequestError,)


class Refusals:
    """The per-account reads of a shard InsightIQ refuses for accounts not CONNECTED (by their records)."""

    def __init__(
        self,
        accounts: Iterable[dict[str, Any]],
        lookup: Callable[[str], dict[str, Any]] | None = None,
    ):
        """`accounts`: the records the run read; `lookup`: for an account not among them, its record (read
        only when a read of it is refused: the incremental sweep has no account records at hand)."""
        self.status = {str(a.get("id")): a.get("status") for a in accounts}
        self.lookup = lookup
        self.refused: dict[str, list[str]] = {}  # read name -> account ids

    def read(self, name: str, account_id: str, records: Callable[[], Iterable[Any]]) -> Iterator[Any]:
        """The records of `records()` (one account's read `name`); a refusal (`refusal_errors`) of an
        account whose record is not CONNECTED yields nothing more and is noted; any other error, or a
        refusal of a CONNECTED account, fails the read."""
        try:
            yield from records()
        except refusal_errors() as exc:
            if str(account_id) not in self.status and self.lookup is not None:
                self.status[str(account_id)] = self.lookup(str(account_id)).get("status")
            status = self.status.get(str(account_id))
            if status == CONNECTED:
                raise
            log.warning(
                "InsightIQ refused %s of account %s (status %s): no data for it in this run (%s)",
                name, account_id, status, getattr(exc, "vendor_message", exc),
            )  # fmt: skip
            self.refused.setdefault(name, []).append(str(account_id))

    def figures(self) -> dict[str, Any]:
        """{"accounts": the refused account ids, "reads": read name -> its refused account ids}."""
        ids = sorted({a for names in self.refused.values() for a in names})
        return {"accounts": ids, "reads": {k: sorted(v) for k, v in sorted(self.refused.items())}}


def refused_accounts(run_dir) -> list[str]:
    """The account ids any per-account read of the run was refused for (`<run>/fetch/refused/*.json`)."""
    directory = run_dir / "fetch" / REFUSED_DIR
    if not directory.is_dir():
        return []
    return sorted({a for f in directory.glob("*.json") for a in json.loads(f.read_text())["accounts"]})


def per_account(
    hook: InsightIQHook,
    resource: str,
    account_ids: list[str],
    days: tuple[str, str],
    label: str,
    refusals: Refusals | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of list `resource` of each account over `days` (from, to), one list each; with
    `refusals`, a refused account's list is no data (`Refusals.read`)."""
    for account_id in track(account_ids, label, unit="accounts", gauges=client_requests(hook)):

        def records(account_id=account_id):
            return hook.iter_records(resource, from_date=days[0], to_date=days[1], account_id=account_id)

        yield from refusals.read(resource, account_id, records) if refusals else records()


def existing_accounts(hook: InsightIQHook, account_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The accounts of `account_ids` InsightIQ still has, one GET each. An account that answers 404 (deleted
    at InsightIQ) is left out; the transform step takes it as disconnected
    (creator_sync.sync.account_status.vanished). Every other error fails the read."""
    found = []
    for account_id in account_ids:
        try:
            found.append(hook.get_record("accounts", account_id))
        except VendorNotFoundError:
            log.warning("InsightIQ has no account %s (404): this run takes it as disconnected", account_id)
    return found


def shard_accounts(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> list[dict[str, Any]]:
    """Shard `shard` of `of`: every `of`-th page of the accounts list from page `shard`, or every
    `of`-th account of the run's account filter (those InsightIQ still has: `existing_accounts`)."""
    if run.account_ids:
        return existing_accounts(hook, run.account_ids[shard::of])
    return list(hook.iter_records("accounts", start_offset=shard * DEFAULT_PAGE_LIMIT, page_stride=of))


def account_contents(
    hook: InsightIQHook,
    account_ids: Iterable[str],
    from_date: str,
    to_date: str,
    *,
    missing_ok: bool = False,
    refusals: Refusals | None = None,
) -> Iterator[dict[str, Any]]:
    """The contents of each account of `account_ids` over days [from_date, to_date], one list each.
    `missing_ok` (a targeted run, whose accounts may be deleted at InsightIQ): an account whose list answers
    404 has no contents. With `refusals`, a refused account's list is no data (`Refusals.read`)."""
    for account_id in account_ids:

        def records(account_id=account_id):
            return hook.iter_records("contents", from_date=from_date, to_date=to_date, account_id=account_id)

        try:
            yield from refusals.read("contents", account_id, records) if refusals else records()
        except VendorNotFoundError:
            if not missing_ok:
                raise
            log.warning("InsightIQ has no contents list for account %s (404): read as empty", account_id)


def directory_files(hook: InsightIQHook, run: SyncRun, users, profiles) -> dict[str, Any]:
    """The users and profiles files of a directory read (records or iterables of records)."""
    out = run.dir / "fetch"
    return {
        "users": write(users, out / "users", "users"),
        "profiles": write(profiles, out / "profiles", "profiles"),
        "requests": hook.stats,
    }


def shard_files(
    hook: InsightIQHook,
    run: SyncRun,
    shard: int,
    accounts: list[dict[str, Any]],
    *,
    audience: bool,
    contents: bool,
) -> dict[str, Any]:
    """Shard `shard`'s files: its `accounts` (records already read), their income transactions and payouts,
    with `audience` the audience of its audience-synced accounts and, with `contents` and when the run reads
    contents per account (creator_sync.sync.contents_read), their contents. A read refused for an account
    not CONNECTED is no data for it (`Refusals`); `refused` names those accounts."""
    from_date, to_date = day_range(run)
    refusals = Refusals(accounts)
    income = [a["id"] for a in accounts if account_status(a, "income") in INCOME_SYNCED]
    audience_ids = []
    if audience:
        audience_ids = [a["id"] for a in accounts if account_status(a, "identity", "audience") == "SYNCED"]
    out = run.dir / "fetch"
    result = {"shard": shard, "accounts": write(accounts, out / "accounts", f"shard-{shard}")}
    for name, resource in INCOME_FILES.items():
        label = f"shard {shard}: {name}"
        records = per_account(hook, resource, income, (from_date, to_date), label, refusals)
        result[name] = write(records, out / name, f"shard-{shard}")
    audiences = (
        record
        for account_id in audience_ids
        for record in refusals.read("audience", account_id, lambda a=account_id: [hook.get_audience(a)])
    )
    result["audience"] = write(audiences, out / "audience", f"shard-{shard}")
    if contents and contents_read.for_hook(hook, run.dir) == contents_read.PER_ACCOUNT:
        mine = [a["id"] for a in accounts if contents_read.has_contents(a)]
        records = account_contents(hook, mine, from_date, to_date, refusals=refusals)
        result["contents"] = write(records, out / "contents", f"shard-{shard}")
    result["refused"] = note_refused(refusals, out, f"shard-{shard}")
    result["requests"] = hook.stats
    return json.loads(json.dumps(result, default=str))


def note_refused(refusals: Refusals, out, name: str) -> dict[str, Any]:
    """The refused figures of a task; when any, also in `<out>/refused/<name>.json` (`refused_accounts`)."""
    figures = refusals.figures()
    if figures["accounts"]:
        (out / REFUSED_DIR).mkdir(parents=True, exist_ok=True)
        (out / REFUSED_DIR / f"{name}.json").write_text(json.dumps(figures, sort_keys=True))
    return figures


def no_contents(run: SyncRun, mode: str, read_by: str) -> dict[str, Any]:
    """An empty contents file: the run's contents are read per account by `read_by`, not here."""
    return {**write(iter(()), run.dir / "fetch" / "contents", "contents"), "mode": mode, "read_by": read_by}


def all_accounts_contents(hook: InsightIQHook, run: SyncRun) -> dict[str, Any] | None:
    """The run's contents as ONE list over all accounts; None when InsightIQ answers a 400 asking for
    account_id (the connection is then switched to per-account reads, creator_sync.sync.contents_read).
    Under a connection that forces all-accounts reads that 400 fails with the way out in its message."""
    from_date, to_date = day_range(run)
    out = run.dir / "fetch" / "contents"
    try:
        written = write(hook.iter_records("contents", from_date=from_date, to_date=to_date), out, "contents")
        return {**written, "mode": contents_read.ALL_ACCOUNTS, "requests": hook.stats}
    except VendorError as exc:
        if not contents_read.asks_for_account_id(exc):
            raise
        if contents_read.forced(hook) == contents_read.ALL_ACCOUNTS:
            raise exc.recast(
                type(exc),
                f"{exc}. Connection '{hook.conn_id}' forces {contents_read.CONTENTS_READ_EXTRA}="
                f"{contents_read.ALL_ACCOUNTS} but InsightIQ requires account_id on this list: set the "
                f"extra to {contents_read.AUTO} or {contents_read.PER_ACCOUNT}",
            ) from None
        contents_read.remember(hook.conn_id, f"HTTP 400 on the all-accounts list: {exc.vendor_message}")
    return None


def contents_per_account(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """The run's contents per account of the accounts list (those with contents), read in this task; a
    list refused for an account not CONNECTED is no data for it (`Refusals`)."""
    from_date, to_date = day_range(run)
    listed = [a for a in hook.iter_records("accounts") if contents_read.has_contents(a)]
    refusals = Refusals(listed)
    records = account_contents(hook, (a["id"] for a in listed), from_date, to_date, refusals=refusals)
    written = write(records, run.dir / "fetch" / "contents", "contents")
    written["refused"] = note_refused(refusals, run.dir / "fetch", "contents")
    return {**written, "mode": contents_read.PER_ACCOUNT, "read_by": "this task", "requests": hook.stats}
