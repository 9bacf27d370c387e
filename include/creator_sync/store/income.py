"""Income items and per-creator income totals (the state behind creator_sync.pipeline.income).

Runs read a creator's income in pieces: an hourly run its interval, the weekly sweep eight days, a targeted
run or a backfill its own span, the history path the past in windows, a retried task the same rows again.
A sum over one run's rows would count an item read twice twice and miss the items other runs read, so every
item read is kept once, keyed by (creator, kind, item id) - read again, its row is replaced with what
InsightIQ says now - and the totals are computed from the kept items, never added to.

Per call (one transform bucket), in ONE write transaction:
1. the bucket's items are upserted, but those of creators on the offboarding skip list (the transform
   dropped them when it built the bucket; one put on the list and purged since must not get items back);
2. the totals of the creators with items in the call, and of the asked creators whose recent window lost an
   item since their totals were computed (``next_change_us`` passed), are recomputed from the items with
   set-based statements (one per ``KEY_CHUNK`` creators, the keys joined like ``key_values``);
3. the totals of the asked creators are read back.
``keep=False`` (a dry run) rolls the transaction back: the answer includes the run's items, nothing stays.

Amounts are integer micro-units and times epoch microseconds: a sum is exact and does not depend on the
order the items arrived in. Amounts of different currencies are never added: every sum is per currency.
Each sum is taken in two parts (whole units and the micro-unit rest), added in Python: a creator's sum may
pass the 64-bit range, where SQLite's sum() fails the statement ('integer overflow').

A currency the creator's previous totals had keeps a figure of 0 when no counted item of it is left (an item
corrected to another currency, its only transaction REVERSED): an upsert that leaves an attribute out does
not change it at Insider, so a figure that is gone is sent as 0. A last payout that is gone (the
creator's only counted payout read again FAILED or PENDING) has no 0 to send: its totals say
``payout_gone`` instead, and keep saying it until a counted payout comes back, so every run that writes the
creator deletes the last_payout_* attributes at Insider (creator_sync.pipeline.income.cleared; a level, as
the lapsed platforms' clears are: a delete that did not land is sent again by the next run).

PostgreSQL: the write transaction first takes the income lock (engine.income_lock), so two runs keeping
items of the same creator at once recompute one after the other, the second from the first's committed
items. Without it, under READ COMMITTED each would sum without the other's uncommitted item and the last to
commit would keep totals that miss one (kept until the creator's next item).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from creator_sync.store.engine import KEY_CHUNK, StoreBase, chunks, income_lock, key_values, now
from creator_sync.store.offboarding import creator_hash
from creator_sync.store.schema import income_items, income_totals, offboarded_creators

TRANSACTION, PAYOUT = "transaction", "payout"
UNIT = 1_000_000  # micro-units per unit: a sum is taken as whole units plus the micro-unit rest


@dataclass(frozen=True)
class IncomeItem:
    """One income item as a run read it. `counted`: its status counts (a COMPLETED transaction, a PAID
    payout: creator_sync.pipeline.income)."""

    user_key: str
    kind: str  # TRANSACTION | PAYOUT
    item_id: str
    account_id: str | None
    amount_micros: int
    currency: str
    at_us: int
    status: str | None
    counted: bool


def item_key(item: IncomeItem) -> tuple[str, str, str]:
    """What makes two reads one item: the creator, the kind and InsightIQ's id (the primary key)."""
    return item.user_key, item.kind, row_id(item)


def row_id(item: IncomeItem) -> str:
    """The item's key column: InsightIQ's id, so a second read of the item replaces its row (the idempotency
    guard: a test switches it off to show the sums double-count without it)."""
    return item.item_id


def totals_of(items: Iterable[IncomeItem], as_of_us: int, window_us: int) -> dict[str, Any]:
    """The totals of one creator's items, the way ``Income.income_totals`` computes them in SQL: per
    currency the lifetime sum and the sum of the items at or after `as_of_us - window_us` (an item exactly
    `window_us` old counts); the newest counted payout (by time, then id). For tests and the docs' example."""
    cutoff = as_of_us - window_us
    lifetime: dict[str, int] = {}
    recent: dict[str, int] = {}
    oldest: int | None = None
    payout: IncomeItem | None = None
    for item in items:
        if not item.counted:
            continue
        if item.kind == PAYOUT:
            if payout is None or (item.at_us, item.item_id) > (payout.at_us, payout.item_id):
                payout = item
            continue
        lifetime[item.currency] = lifetime.get(item.currency, 0) + item.amount_micros
        if item.at_us >= cutoff:
            recent[item.currency] = recent.get(item.currency, 0) + item.amount_micros
            oldest = item.at_us if oldest is None else min(oldest, item.at_us)
    return _totals(lifetime, recent, _payout(payout), as_of_us)


def _payout(item: IncomeItem | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "at_us": item.at_us,
        "amount_micros": item.amount_micros,
        "currency": item.currency,
        "item_id": item.item_id,
    }


def _totals(
    lifetime: dict, recent: dict, payout: dict | None, as_of_us: int, payout_gone: bool = False
) -> dict[str, Any]:
    """Totals as stored (JSON): a currency with a lifetime sum has a recent sum too (0 when nothing is
    recent), so a recent figure falls to 0 instead of keeping its last value. `payout_gone` (set only when
    true): no counted payout is left, but an earlier computation had one (see the module)."""
    out = {
        "lifetime": dict(sorted(lifetime.items())),
        "recent": {currency: recent.get(currency, 0) for currency in sorted(lifetime)},
        "payout": payout,
        "as_of_us": as_of_us,
    }
    if payout_gone and payout is None:
        out["payout_gone"] = True
    return out


def had_payout(previous: dict[str, Any]) -> bool:
    """Whether a creator's previous totals had a last payout sent to Insider, or one still to delete there
    (the guard behind ``payout_gone``: a test switches it off)."""
    return bool(previous.get("payout") or previous.get("payout_gone"))


def serialize(conn) -> None:
    """Take the income lock for the rest of this transaction: see the module (a test switches it off)."""
    income_lock(conn)


class Income(StoreBase):
    def income_totals(
        self,
        items: Sequence[IncomeItem],
        user_keys: Iterable[str],
        *,
        as_of_us: int,
        window_us: int,
        keep: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Record `items`, bring the totals up to date (see the module) and return those of `user_keys`
        (creators without any income item have none). The recent window ends at the latest moment any
        call computed the totals for (`as_of_us` or later): a backfill or a re-run of an old interval does
        not move a creator's figures back in time."""
        wanted = sorted(set(user_keys))
        if not items:  # nothing read: a write transaction (SQLite's lock) only when a figure decayed
            with self.engine.connect() as conn:
                found = self._read_totals(conn, wanted)
            if not self._decayed(found, as_of_us):
                return _public(found)
        with self.engine.connect() as raw:
            conn = raw.execution_options(creator_sync_write=True)
            transaction = conn.begin()
            try:
                serialize(conn)
                items = _not_offboarded(conn, items)
                self._upsert_items(conn, items)
                found = self._read_totals(conn, wanted)  # one look-up of the asked creators
                due = {i.user_key for i in items} | self._decayed(found, as_of_us)
                for part in chunks(sorted(due), KEY_CHUNK):
                    self._recompute(conn, part, as_of_us, window_us)
                found.update(self._read_totals(conn, sorted(due & set(wanted))))
            except BaseException:
                transaction.rollback()
                raise
            if keep:
                transaction.commit()
            else:
                transaction.rollback()
        return _public(found)

    def stored_income_totals(self, user_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored totals of `user_keys` as they are (no item kept, nothing recomputed): what the clear
        pass re-reads before it deletes a last payout (creator_sync.pipeline.clear)."""
        with self.engine.connect() as conn:
            return _public(self._read_totals(conn, sorted(set(user_keys))))

    def income_items_of(self, user_keys: Iterable[str]) -> list[IncomeItem]:
        """The kept items of `user_keys` (tests, the offboarding purge's count)."""
        t, out = income_items, []
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(user_keys)), KEY_CHUNK):
                keys = key_values(conn.dialect.name, part)
                query = sa.select(*_ITEM_COLUMNS).select_from(keys.join(t, t.c.user_key == keys.c.value))
                out += [IncomeItem(*row) for row in conn.execute(query)]
        return out

    def _upsert_items(self, conn, items: Sequence[IncomeItem]) -> None:
        latest: dict[tuple[str, str, str], IncomeItem] = {}
        for item in items:  # one row per key in a statement (PostgreSQL refuses a row updated twice)
            latest[item_key(item)] = item
        at = now()
        rows = [
            {
                "user_key": i.user_key,
                "kind": i.kind,
                "item_id": row_id(i),
                "account_id": i.account_id,
                "amount_micros": i.amount_micros,
                "currency": i.currency,
                "at_us": i.at_us,
                "status": i.status,
                "counted": i.counted,
                "read_at": at,
            }
            for i in latest.values()
        ]
        changing = ("account_id", "amount_micros", "currency", "at_us", "status", "counted", "read_at")
        for part in chunks(rows):
            stmt = self._insert(income_items)
            stmt = stmt.on_conflict_do_update(
                index_elements=[income_items.c.user_key, income_items.c.kind, income_items.c.item_id],
                set_={name: stmt.excluded[name] for name in changing},
            )
            conn.execute(stmt, part)

    @staticmethod
    def _decayed(found: dict[str, dict[str, Any]], as_of_us: int) -> set[str]:
        """Creators whose recent sum changed with time alone since it was computed: the moment their oldest
        recent transaction leaves the window (`next_change_us`) is before `as_of_us`."""
        return {
            user
            for user, totals in found.items()
            if totals.get("next_change_us") is not None and totals["next_change_us"] < as_of_us
        }

    def _recompute(self, conn, user_keys: list[str], as_of_us: int, window_us: int) -> None:
        t, dialect = income_items, conn.dialect.name
        keys = key_values(dialect, user_keys)
        stored = sa.select(sa.func.max(income_totals.c.as_of_us)).select_from(
            keys.join(income_totals, income_totals.c.user_key == keys.c.value)
        )
        as_of_us = max(as_of_us, int(conn.execute(stored).scalar() or 0))
        cutoff = as_of_us - window_us
        lifetime: dict[str, dict[str, int]] = {u: {} for u in user_keys}
        had: set[str] = set()
        for user, previous in self._read_totals(conn, user_keys).items():
            lifetime[user] = dict.fromkeys(previous.get("lifetime") or {}, 0)  # a currency gone: sent as 0
            if had_payout(previous):
                had.add(user)
        keys = key_values(dialect, user_keys)
        units, rest = t.c.amount_micros // UNIT, t.c.amount_micros % UNIT  # truncated: units*UNIT + rest

        def recent(part):
            return sa.func.sum(sa.case((t.c.at_us >= cutoff, part), else_=0))

        oldest = sa.case((t.c.at_us >= cutoff, t.c.at_us), else_=None)
        sums = (
            sa.select(
                t.c.user_key,
                t.c.currency,
                sa.func.sum(units),
                sa.func.sum(rest),
                recent(units),
                recent(rest),
                sa.func.min(oldest),
            )
            .select_from(keys.join(t, t.c.user_key == keys.c.value))
            .where(t.c.kind == TRANSACTION, t.c.counted.is_(True))
            .group_by(t.c.user_key, t.c.currency)
        )
        recents: dict[str, dict[str, int]] = {u: {} for u in user_keys}
        next_change: dict[str, int | None] = dict.fromkeys(user_keys)
        for user, currency, total_units, total_rest, recent_units, recent_rest, first in conn.execute(sums):
            lifetime[user][currency] = int(total_units) * UNIT + int(total_rest)
            recents[user][currency] = int(recent_units) * UNIT + int(recent_rest)
            if first is not None:
                change = int(first) + window_us
                next_change[user] = change if next_change[user] is None else min(next_change[user], change)
        newest = self._newest_payouts(conn, user_keys)
        at = now()
        rows = [
            {
                "user_key": u,
                "totals": json.dumps(
                    _totals(lifetime[u], recents[u], _payout(newest.get(u)), as_of_us, payout_gone=u in had)
                ),
                "as_of_us": as_of_us,
                "next_change_us": next_change[u],
                "updated_at": at,
            }
            for u in user_keys
        ]
        self._store_totals(conn, rows)

    @staticmethod
    def _newest_payouts(conn, user_keys: list[str]) -> dict[str, IncomeItem]:
        """Each creator's newest counted payout (by time, then id): a payout read late never wins."""
        t, keys = income_items, key_values(conn.dialect.name, user_keys)
        payouts = (
            sa.select(*_ITEM_COLUMNS)
            .select_from(keys.join(t, t.c.user_key == keys.c.value))
            .where(t.c.kind == PAYOUT, t.c.counted.is_(True))
        )
        newest: dict[str, IncomeItem] = {}
        for row in conn.execute(payouts):
            item = IncomeItem(*row)
            held = newest.get(item.user_key)
            if held is None or (item.at_us, item.item_id) > (held.at_us, held.item_id):
                newest[item.user_key] = item
        return newest

    def _store_totals(self, conn, rows: list[dict]) -> None:
        for part in chunks(rows):
            stmt = self._insert(income_totals)
            stmt = stmt.on_conflict_do_update(
                index_elements=[income_totals.c.user_key],
                set_={n: stmt.excluded[n] for n in ("totals", "as_of_us", "next_change_us", "updated_at")},
            )
            conn.execute(stmt, part)

    @staticmethod
    def _read_totals(conn, user_keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored totals of `user_keys`, each with its `next_change_us`."""
        t, found = income_totals, {}
        for part in chunks(user_keys, KEY_CHUNK):
            keys = key_values(conn.dialect.name, part)
            joined = keys.join(t, t.c.user_key == keys.c.value)
            query = sa.select(t.c.user_key, t.c.totals, t.c.next_change_us).select_from(joined)
            rows = conn.execute(query)
            found.update(
                {user: {**json.loads(text), "next_change_us": change} for user, text, change in rows}
            )
        return found


def _not_offboarded(conn, items: Sequence[IncomeItem]) -> Sequence[IncomeItem]:
    """The items of creators not on the offboarding skip list, read under the income lock: the transform
    drops offboarded creators when it builds a bucket, but a creator put on the list and purged since then
    would otherwise get their items back after the purge (the purge takes the same lock)."""
    t = offboarded_creators
    gone = set(conn.execute(sa.select(t.c.user_hash).where(t.c.reenabled_at.is_(None))).scalars())
    if not gone:
        return items
    return [i for i in items if creator_hash(i.user_key) not in gone]


def _public(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Totals as callers get them: without the store's own `next_change_us`."""
    return {user: {k: v for k, v in t.items() if k != "next_change_us"} for user, t in found.items()}


_ITEM_COLUMNS = (
    income_items.c.user_key,
    income_items.c.kind,
    income_items.c.item_id,
    income_items.c.account_id,
    income_items.c.amount_micros,
    income_items.c.currency,
    income_items.c.at_us,
    income_items.c.status,
    income_items.c.counted,
)
