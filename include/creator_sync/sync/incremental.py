"""Executing a sync plan (creator_sync.sync.plan) through the InsightIQ hook.

`snapshot_from` builds the planner's Snapshot from a directory read (the users count and the accounts
records); `execute` runs the planned reads with the hook's client (its rate limiter, retries and request
counters) and returns the records by resource. The incremental fetch mode's task bodies
(creator_sync.sync.incremental_fetch) run their planned reads through it (docs/performance.md, "Incremental
sync: the request budget").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync.insightiq_reads import INCOME_SYNCED
from creator_sync.sync.plan import Read, Snapshot


def _income_status(account: Mapping[str, Any]) -> Any:
    data = account.get("data")
    income = data.get("income") if isinstance(data, Mapping) else None
    return income.get("status") if isinstance(income, Mapping) else None


def snapshot_from(
    users: Sequence[Mapping[str, Any]],
    accounts: Sequence[Mapping[str, Any]],
    profiles: int | None = None,
    contents_per_day: int = 0,
) -> Snapshot:
    """The planner's view of a stored directory: sizes, known user ids, income accounts by id."""
    income = sorted(a["id"] for a in accounts if _income_status(a) in INCOME_SYNCED)
    return Snapshot(
        users=len(users),
        accounts=len(accounts),
        profiles=len(accounts) if profiles is None else profiles,
        income_accounts=income,
        known_users=frozenset(u["id"] for u in users),
        contents_per_day=contents_per_day,
    )


def records(hook: InsightIQHook, read: Read) -> Iterable[dict[str, Any]]:
    """The records of one planned read (a list read pages through the hook's paging)."""
    if read.kind == "get":
        return [hook.get_record(read.resource, str(read.record_id))]
    if read.kind == "search":
        return hook.search(read.resource, read.ids)
    if read.kind != "list":
        raise ValueError(f"unknown read kind {read.kind!r} (list, get or search)")
    params = dict(read.params)
    return hook.iter_records(
        read.resource,
        from_date=params.pop("from_date", None),
        to_date=params.pop("to_date", None),
        start_offset=read.offset,
        max_pages=read.max_pages,
        **params,
    )


def execute(hook: InsightIQHook, reads: Iterable[Read]) -> dict[str, list[dict[str, Any]]]:
    """Run the reads in order; records by resource (a record read twice, e.g. by a sweep page and by id,
    appears twice: the consumer keeps one per id)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for read in reads:
        out.setdefault(read.resource, []).extend(records(hook, read))
    return out
