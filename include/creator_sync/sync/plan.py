"""The InsightIQ requests of a sync, planned so that an hourly run costs what changed, not the fleet.

Pure functions (no Airflow, no HTTP): given what the last snapshot knows, what the webhooks said changed,
and the run's interval, they return the list of reads a run makes. `run_plan` executes such a list against
any page function and counts the requests, so the budget is measured, not restated
(devtools/bench/requests_sim.py), and the same list can drive the real fetch.

Three plans (docs/performance.md, "Incremental sync: the request budget"):
- `plan_full`: today's hourly run; every list in full, income per income-synced account.
- `plan_hourly`: incremental; the directory (users, accounts, profiles) comes from the stored snapshot plus
  the ids the webhooks named plus a rotating sweep of 1/N of each list per hour (the lists have no
  updated-since filter, so the sweep is the safety net for a lost webhook); contents from the interval's
  date-filtered list plus a bulk search of the ids the webhooks named (when contents are read per account,
  creator_sync.sync.contents_read: a rotating per-account sweep instead of the list, like income); income by
  bulk search of the transaction and payout ids the webhooks named plus a slower rotating per-account sweep
  (transactions and payouts of the same accounts over the same days). Payouts come monthly or weekly:
  never every income account every hour.
- `plan_backfill`: a range of days; the directory once (or 0 requests from the snapshot), the range's
  date-filtered content list once and each income account's transactions and payouts over the whole range
  once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from creator_sync.http.paging import DEFAULT_PAGE_LIMIT

SEARCH_MAX_IDS = 100  # the bulk /search endpoints take at most 100 ids (webhook `items` hold <= 100 too)
DIRECTORY_SWEEP_HOURS = 24  # every user, account and profile is re-read at least once a day
INCOME_SWEEP_HOURS = 168  # every income account's transactions are re-read at least once a week
# Per-account contents (creator_sync.sync.contents_read): every account's contents are re-read at least once
# a week, over the week before (so no item is missed between two sweeps of an account); the same period as
# income, so both sweeps share one window start (incremental_fetch.income_sweep_from).
CONTENTS_SWEEP_HOURS = INCOME_SWEEP_HOURS

DIRECTORY = ("users", "accounts", "profiles")
ACCOUNT_EVENTS = frozenset({"ACCOUNTS.CONNECTED", "ACCOUNTS.DISCONNECTED", "SESSION.EXPIRED"})
PROFILE_EVENTS = frozenset({"PROFILES.ADDED", "PROFILES.UPDATED"})
CONTENT_EVENTS = frozenset({"CONTENTS.ADDED", "CONTENTS.UPDATED"})
TRANSACTION_EVENTS = frozenset({"TRANSACTIONS.ADDED", "TRANSACTIONS.UPDATED"})
PAYOUT_EVENTS = frozenset({"PAYOUTS.ADDED", "PAYOUTS.UPDATED"})
# the income lists read per income-synced account, over the same days: transactions and payouts (a payout is
# the platform paying the creator out; payout_received in insider_mapping.yaml)
INCOME_LISTS = ("social_transactions", "social_payouts")


@dataclass(frozen=True)
class Read:
    """One planned read. `kind`: "list" (page from `offset` until a short page, or at most `max_pages`),
    "get" (one record by id: 1 request) or "search" (bulk by <= 100 ids: 1 request).

    `resource` is an InsightIQHook resource name (users, accounts, profiles, contents, social_transactions);
    `params` are the list's query filters; `estimate` is the planner's request count for the budget."""

    kind: str
    resource: str
    purpose: str
    params: Mapping[str, Any] = field(default_factory=dict)
    record_id: str | None = None
    ids: tuple[str, ...] = ()
    offset: int = 0
    max_pages: int | None = None
    estimate: int = 1


@dataclass(frozen=True)
class Snapshot:
    """What the stored directory snapshot knows: list sizes, the known user ids, the income-synced account
    ids (in a stable order), and the contents listed per day (from the last runs; for the estimate only)."""

    users: int
    accounts: int
    profiles: int
    income_accounts: Sequence[str]
    known_users: Container[str] = frozenset()
    contents_per_day: int = 0
    contents_accounts: Sequence[str] = ()  # accounts with contents, stable order (per-account contents only)


@dataclass
class Changes:
    """The ids the webhooks of an interval named, by what must be re-read."""

    accounts: set[str] = field(default_factory=set)  # account events: GET /v1/accounts/{id}
    new_users: set[str] = field(default_factory=set)  # owners of connected accounts the snapshot lacks
    profiles: dict[str, set[str]] = field(default_factory=dict)  # user id -> profile ids
    contents: set[str] = field(default_factory=set)  # content ids (bulk search)
    transactions: set[str] = field(default_factory=set)  # social transaction ids (bulk search)
    payouts: set[str] = field(default_factory=set)  # social payout ids (bulk search)


def changes_from_payloads(payloads: Iterable[Mapping[str, Any]], known_users: Container[str]) -> Changes:
    """Fold webhook payloads (``{"event", "data": {account_id, user_id, profile_id | items}}``) into the ids
    to re-read. Events of other kinds (audience, balances, async jobs) are left to the sweep."""
    out = Changes()
    for payload in payloads:
        event = str(payload.get("event", "")).upper()
        data = payload.get("data") or {}
        user_id, account_id = data.get("user_id"), data.get("account_id")
        if event in ACCOUNT_EVENTS and account_id:
            out.accounts.add(account_id)
            if event == "ACCOUNTS.CONNECTED" and user_id and user_id not in known_users:
                out.new_users.add(user_id)
        elif event in PROFILE_EVENTS and user_id and data.get("profile_id"):
            out.profiles.setdefault(user_id, set()).add(data["profile_id"])
        elif event in CONTENT_EVENTS:
            out.contents.update(data.get("items") or ())
        elif event in TRANSACTION_EVENTS:
            out.transactions.update(data.get("items") or ())
        elif event in PAYOUT_EVENTS:
            out.payouts.update(data.get("items") or ())
    return out


def pages(records: int, page: int = DEFAULT_PAGE_LIMIT) -> int:
    """Requests to list `records` items: a full last page needs one more (empty) page to see the end."""
    return records // page + 1


def day_range(start: datetime, end: datetime) -> tuple[str, str]:
    """The whole days InsightIQ's date filters need to cover [start, end)."""
    return start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()


def _days(from_date: str, to_date: str) -> int:
    return (date.fromisoformat(to_date) - date.fromisoformat(from_date)).days + 1


def full_list(resource: str, size: int, purpose: str) -> Read:
    return Read("list", resource, purpose, estimate=pages(size))


def sweep_slice(
    resource: str, size: int, hour: int, hours: int, page: int = DEFAULT_PAGE_LIMIT
) -> Read | None:
    """Slice `hour % hours` of a list: a contiguous run of its pages (None when the slice is empty). The
    slice holding the list's last page reads on to the end, so a list that grew since the snapshot is
    still covered within the period."""
    total = pages(size, page)
    per = math.ceil(total / hours)
    k = hour % hours
    first = k * per
    if first < total <= first + per:
        return Read("list", resource, "sweep", offset=first * page, estimate=max(1, total - first))
    if first >= total:
        return None
    return Read("list", resource, "sweep", offset=first * page, max_pages=per, estimate=per)


def _batches(ids: Iterable[str], size: int = SEARCH_MAX_IDS) -> list[tuple[str, ...]]:
    ordered = sorted(ids)
    return [tuple(ordered[i : i + size]) for i in range(0, len(ordered), size)]


def _searches(resource: str, ids: Iterable[str], purpose: str) -> list[Read]:
    return [Read("search", resource, purpose, ids=batch) for batch in _batches(ids)]


def _contents(snapshot: Snapshot, from_date: str, to_date: str, purpose: str) -> Read:
    estimate = pages(snapshot.contents_per_day * _days(from_date, to_date))
    params = {"from_date": from_date, "to_date": to_date}
    return Read("list", "contents", purpose, params=params, estimate=estimate)


def _income(account_ids: Iterable[str], from_date: str, to_date: str, purpose: str) -> list[Read]:
    """Each account's INCOME_LISTS over the days: its transactions, then its payouts."""
    accounts = list(account_ids)
    return [r for name in INCOME_LISTS for r in _per_account(name, accounts, from_date, to_date, purpose)]


def _per_account(
    resource: str, account_ids: Iterable[str], from_date: str, to_date: str, purpose: str
) -> list[Read]:
    return [
        Read("list", resource, purpose, params={"account_id": a, "from_date": from_date, "to_date": to_date})
        for a in account_ids
    ]


def _due(accounts: Sequence[str], hour: int, hours: int) -> Sequence[str]:
    """Slice `hour % hours` of `accounts`: `hours` consecutive runs cover every account once."""
    per = math.ceil(len(accounts) / hours) if accounts else 0
    k = hour % hours
    return accounts[k * per : (k + 1) * per]


def _interval_contents(
    snapshot: Snapshot, from_date: str, to_date: str, purpose: str, per_account: bool
) -> list[Read]:
    if per_account:
        return _per_account("contents", snapshot.contents_accounts, from_date, to_date, purpose)
    return [_contents(snapshot, from_date, to_date, purpose)]


def plan_full(
    snapshot: Snapshot, start: datetime, end: datetime, contents_per_account: bool = False
) -> list[Read]:
    """A full sync (what every hourly run does in CREATOR_SYNC_FETCH_MODE=full): the three directory lists
    in full, the interval's contents (per account when `contents_per_account`), and each income-synced
    account's transactions and payouts over the interval."""
    from_date, to_date = day_range(start, end)
    sizes = {"users": snapshot.users, "accounts": snapshot.accounts, "profiles": snapshot.profiles}
    return [
        *(full_list(name, sizes[name], "full") for name in DIRECTORY),
        *_interval_contents(snapshot, from_date, to_date, "interval", contents_per_account),
        *_income(snapshot.income_accounts, from_date, to_date, "full"),
    ]


def _profile_reads(changes: Changes) -> list[Read]:
    """One request per changed user: GET /v1/profiles/{id} for one profile, else the user's profiles list."""
    reads = []
    for user_id in sorted(changes.profiles):
        profile_ids = changes.profiles[user_id]
        if len(profile_ids) == 1:
            reads.append(Read("get", "profiles", "changed", record_id=next(iter(profile_ids))))
        else:
            reads.append(Read("list", "profiles", "changed", params={"user_id": user_id}))
    return reads


def plan_hourly(
    snapshot: Snapshot,
    changes: Changes,
    start: datetime,
    end: datetime,
    hour: int,
    directory_sweep_hours: int = DIRECTORY_SWEEP_HOURS,
    income_sweep_hours: int = INCOME_SWEEP_HOURS,
    contents_per_account: bool = False,
) -> list[Read]:
    """An incremental hourly run. `hour` is the sweep cursor (e.g. hours since the epoch): run h sweeps
    slice h % N of each directory list and slice h % M of the income accounts, so N (M) consecutive runs
    cover every record. Where the changed ids of a directory list would cost more requests than reading
    the whole list, the whole list is read instead (and its sweep slice is dropped).

    `contents_per_account` (the connection reads contents per account): instead of the interval's list,
    slice h % CONTENTS_SWEEP_HOURS of the snapshot's contents accounts, each over the week before the run's
    end; the contents the webhooks named still come by bulk search, and a targeted run (webhook) reads its
    accounts' contents at once."""
    if directory_sweep_hours < 1 or income_sweep_hours < 1:
        raise ValueError("sweep periods must be at least 1 hour")
    sizes = {"users": snapshot.users, "accounts": snapshot.accounts, "profiles": snapshot.profiles}
    targeted = {
        "users": [Read("get", "users", "changed", record_id=u) for u in sorted(changes.new_users)],
        "accounts": [Read("get", "accounts", "changed", record_id=a) for a in sorted(changes.accounts)],
        "profiles": _profile_reads(changes),
    }
    reads: list[Read] = []
    for name in DIRECTORY:
        if len(targeted[name]) >= pages(sizes[name]):
            reads.append(full_list(name, sizes[name], "changed"))
        else:
            reads += targeted[name]
            sweep = sweep_slice(name, sizes[name], hour, directory_sweep_hours)
            reads += [sweep] if sweep else []
    from_date, to_date = day_range(start, end)
    if contents_per_account:
        due_contents = _due(snapshot.contents_accounts, hour, CONTENTS_SWEEP_HOURS)
        contents_from, _ = day_range(end - timedelta(hours=CONTENTS_SWEEP_HOURS), end)
        reads += _per_account("contents", due_contents, contents_from, to_date, "sweep")
    else:
        reads.append(_contents(snapshot, from_date, to_date, "interval"))
    reads += _searches("contents", changes.contents, "changed")
    reads += _searches("social_transactions", changes.transactions, "changed")
    reads += _searches("social_payouts", changes.payouts, "changed")
    # income sweep: the due accounts' transactions and payouts since their previous sweep (M hours ago)
    due = _due(snapshot.income_accounts, hour, income_sweep_hours)
    sweep_from, _ = day_range(end - timedelta(hours=income_sweep_hours), end)
    reads += _income(due, sweep_from, to_date, "sweep")
    return reads


def plan_backfill(
    snapshot: Snapshot,
    start: datetime,
    end: datetime,
    use_snapshot: bool = False,
    contents_per_account: bool = False,
) -> list[Read]:
    """A backfill of [start, end): the directory once (nothing when `use_snapshot`), the range's contents in
    one date-filtered list, each income account's transactions and payouts over the whole range in one list
    each. The
    transform then cuts the range into its hourly windows (events only inside each window)."""
    from_date, to_date = day_range(start, end)
    sizes = {"users": snapshot.users, "accounts": snapshot.accounts, "profiles": snapshot.profiles}
    directory = [] if use_snapshot else [full_list(name, sizes[name], "backfill") for name in DIRECTORY]
    return [
        *directory,
        *_interval_contents(snapshot, from_date, to_date, "backfill", contents_per_account),
        *_income(snapshot.income_accounts, from_date, to_date, "backfill"),
    ]


def estimate(reads: Iterable[Read]) -> int:
    return sum(r.estimate for r in reads)


PageFn = Callable[[Read, int, int], int]  # (read, offset, limit) -> records on that page


def run_plan(reads: Iterable[Read], fetch: PageFn, page: int = DEFAULT_PAGE_LIMIT) -> dict[str, int]:
    """Execute the reads through `fetch` and count requests per resource (and "total").

    `fetch(read, offset, limit)` makes ONE request and returns how many records it got (a get or search
    ignores offset/limit). A list read pages until a short page or its `max_pages`."""
    counts: dict[str, int] = {"total": 0}

    def count(read: Read) -> None:
        counts[read.resource] = counts.get(read.resource, 0) + 1
        counts["total"] += 1

    for read in reads:
        if read.kind != "list":
            fetch(read, 0, page)
            count(read)
            continue
        offset, done = read.offset, 0
        while True:
            got = fetch(read, offset, page)
            count(read)
            done += 1
            if got < page or (read.max_pages is not None and done >= read.max_pages):
                break
            offset += page
    return counts
