"""Income attributes per creator: earnings over the last 30 days and over the creator's lifetime, per
currency, and the last payout (the mapping's `income` section, docs/mapping.md).

A run reads only some of a creator's income (its interval, the weekly sweep's eight days, a targeted run's
span, a backfill's days, the history path's windows), and reads some items more than once. So the figures
come from state (creator_sync.store.income): the transform (pass 2) takes the income items from the chunks
of transactions and payouts it reads anyway - no extra InsightIQ request - and spools them to their bucket;
per bucket (pass 3) the items of the bucket's creators are upserted once per (creator, kind, item id), the
totals are recomputed from every item kept, and the bucket's creators get the attributes of their totals.

- Currencies are never added together: one attribute per currency, named with the ISO 4217 code in lower
  case (`earnings_30d_usd`, `earnings_lifetime_eur`): Insider attributes are flat (string, number, boolean,
  date, arrays; no object type in the Upsert API docs) and its names are lower case.
- The 30-day window ends at the run's data interval end (or a later end a previous run computed the totals
  for: a backfill does not move figures back) and holds the transactions at or after end - 30 days (one
  exactly 30 days old counts). The figure falls with time alone: every run rechecks the totals of the
  creators it writes whose oldest transaction in the window has left it (`next_change_us`), so a creator
  without new income gets a correct figure from the first run after that (within an hour).
- The last payout is the newest kept payout (by time, then id): one read late (the sweep, a backfill, the
  history path) never replaces a newer one, because the newer one is in the state too.
- A last payout that is gone (the creator's only counted payout read again FAILED: the totals say
  `payout_gone`, creator_sync.store.income) has no value to send: `cleared` lists the last_payout_*
  attributes for Insider's Delete User Attribute API, with the lapsed platforms' clears
  (creator_sync.pipeline.clearing, clears.jsonl), while the upsert leaves them out.
- An item whose amount, currency or time is not usable is kept as a dead letter (`invalid_income_item`,
  malformed.jsonl: the send step stores it) and stays out of the totals. One that still has its id and a
  status that does not count (a payout read again FAILED without an amount) is also kept, uncounted
  (`uncounting`): the item it replaces stops counting, so a last payout that is gone is cleared.
- Only counted statuses are summed (the mapping's `transaction_statuses` / `payout_statuses`); others are
  kept with their status, so a later read that finds the item COMPLETED counts it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creator_sync.pipeline.events import parse_timestamps
from creator_sync.pipeline.malformed import _plain
from creator_sync.pipeline.mapping import EventSpec, Mapping
from creator_sync.pipeline.mapping_schema import INCOME_ATTRIBUTES
from creator_sync.pipeline.validate import INVALID_INCOME_ITEM
from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem

WINDOW_DAYS = 30  # the window of earnings_30d (its name says it: not a setting)
MICROS = 1_000_000
# source resource -> the kind of item it holds
KINDS = {"transactions": TRANSACTION, "payouts": PAYOUT}
# the columns of a transaction / payout the totals read, beside the event spec's user and timestamp
ID, ACCOUNT, AMOUNT, CURRENCY, STATUS = "id", "account.id", "amount", "currency", "status"
COLUMNS = (ID, ACCOUNT, AMOUNT, CURRENCY, STATUS)
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
NO_CURRENCY = "XXX"  # ISO 4217's code for no currency: an uncounting item's unusable currency
ATTRIBUTES = INCOME_ATTRIBUTES  # owned by the mapping's schema

SPOOL_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("kind", pa.string()),
        ("item_id", pa.string()),
        ("account_id", pa.string()),
        ("amount_micros", pa.int64()),
        ("currency", pa.string()),
        ("at_us", pa.int64()),
        ("status", pa.string()),
        ("counted", pa.bool_()),
    ]
)


def window_us() -> int:
    return WINDOW_DAYS * 86_400 * MICROS


def epoch_us(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value // 1000)


def _text(table: pa.Table, name: str) -> pd.Series:
    if name not in table.column_names:
        return pd.Series([None] * len(table), dtype="object")
    values = pc.cast(table[name], pa.string()).to_pandas().astype("object")
    return values.where(values.notna(), None)


def _micros(values: pa.ChunkedArray | None, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Amounts as integer micro-units and whether each is usable (a finite number)."""
    if values is None:
        return np.zeros(rows, np.int64), np.zeros(rows, bool)
    numbers = pd.to_numeric(values.to_pandas(), errors="coerce").astype("float64").to_numpy()
    ok = np.isfinite(numbers) & (np.abs(np.nan_to_num(numbers)) < 9e12)
    return np.where(ok, np.round(np.nan_to_num(numbers) * MICROS), 0).astype(np.int64), ok


def items(table: pa.Table, spec: EventSpec, m: Mapping) -> tuple[pa.Table, list[dict[str, Any]]]:
    """A chunk of transactions or payouts (rows with their user) -> (income items, SPOOL_SCHEMA; dead
    letters of the rows that cannot count: no id, no usable amount, currency or time)."""
    kind = KINDS[spec.source]
    rows = len(table)
    ids, currency, status = _text(table, ID), _text(table, CURRENCY), _text(table, STATUS)
    amount, amount_ok = _micros(table[AMOUNT] if AMOUNT in table.column_names else None, rows)
    ts = parse_timestamps(table[spec.timestamp]).reset_index(drop=True)
    problems = [
        (ids.map(lambda v: v is None or not str(v).strip()).to_numpy(bool), "no id"),
        (~amount_ok, "no usable amount (a finite number)"),
        (~currency.map(lambda v: isinstance(v, str) and bool(_CURRENCY.match(v.strip()))).to_numpy(bool),
         "no ISO 4217 currency"),
        (ts.isna().to_numpy(bool), f"no usable {spec.timestamp}"),
    ]  # fmt: skip
    bad = np.zeros(rows, bool)
    detail = np.full(rows, None, dtype=object)
    for mask, why in problems:
        detail[mask & ~bad] = why
        bad |= mask
    counted_statuses = set(m.income.statuses(kind)) if m.income else set()
    no_status_counts = kind == TRANSACTION  # a transaction without a status counts, a payout does not
    counted = status.map(
        lambda v: no_status_counts if v is None else v.strip().upper() in counted_statuses
    ).to_numpy(bool)
    good = ~bad | uncounting(bad, problems[0][0], status, counted)
    at = ts.astype("datetime64[us, UTC]").astype("int64").to_numpy() if rows else np.array([], np.int64)
    at = np.where(ts.isna().to_numpy(bool), 0, at)  # an uncounting item's unusable time: never read
    currency = currency.map(lambda v: v.strip().upper() if isinstance(v, str) and _CURRENCY.match(v.strip())
                            else NO_CURRENCY)  # fmt: skip
    out = pa.table(
        {
            "uuid": pc.cast(table[spec.user], pa.string()).filter(pa.array(good)),
            "kind": pa.array([kind] * int(good.sum()), pa.string()),
            "item_id": pa.array(ids[good].map(lambda v: str(v).strip()).tolist(), pa.string()),
            "account_id": pa.array(_text(table, ACCOUNT)[good].tolist(), pa.string()),
            "amount_micros": pa.array(amount[good], pa.int64()),
            "currency": pa.array(currency[good].tolist(), pa.string()),
            "at_us": pa.array(at[good], pa.int64()),
            "status": pa.array(status[good].tolist(), pa.string()),
            "counted": pa.array(counted[good], pa.bool_()),
        },
        schema=SPOOL_SCHEMA,
    )
    letters = []
    if bad.any():
        for row, why in zip(table.filter(pa.array(bad)).to_pylist(), detail[bad], strict=True):
            letters.append(dead_letter(spec.source, row, why))
    return out, letters


def uncounting(bad: np.ndarray, no_id: np.ndarray, status: pd.Series, counted: np.ndarray) -> np.ndarray:
    """The unusable rows (`bad`: a dead letter each) that still say the item does not count: an id and a
    status that is not counted (a payout read FAILED without an amount). They are kept, uncounted, so an
    item counted before stops counting (a last payout that is gone is cleared, not left at Insider); their
    amount, currency and time are never read (0, NO_CURRENCY, 0). A test switches this guard off."""
    return bad & ~no_id & status.notna().to_numpy(bool) & ~counted


def dead_letter(resource: str, record: dict[str, Any], why: str) -> dict[str, Any]:
    """The dead-letter row of an income item that cannot count (key: a hash of the record: idempotent)."""
    payload = json.loads(json.dumps(_plain(record), default=str))
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "user_key": f"income:{resource}:{digest}",
        "reason": INVALID_INCOME_ITEM,
        "detail": f"InsightIQ {resource} record with {why}: kept out of the income attributes",
        "payload": payload,
    }


def as_items(table: pa.Table, creators: pd.Index) -> list[IncomeItem]:
    """A bucket's spooled items of `creators` (items of creators the run does not write - orphans,
    offboarded creators - are not kept)."""
    if not len(table):
        return []
    mine = pc.is_in(table["uuid"], value_set=pa.array(creators.astype(object), pa.string()))
    return [IncomeItem(*row.values()) for row in table.filter(mine).to_pylist()]


@dataclass(frozen=True)
class IncomeState:
    """The state the transform keeps the items in and reads the totals from (a StateStore: its `Income`
    part). `keep=False` (a dry run): the totals include the run's items, nothing is written."""

    store: Any
    keep: bool = True

    def totals(self, items: list[IncomeItem], creators: pd.Index, as_of: datetime) -> dict[str, dict]:
        return self.store.income_totals(
            items, list(creators), as_of_us=epoch_us(as_of), window_us=window_us(), keep=self.keep
        )


def _amount(micros: int) -> float:
    return round(micros / MICROS, 6)


def attribute_values(totals: dict[str, Any]) -> dict[str, Any]:
    """One creator's totals -> its attributes (names without `custom.`)."""
    out: dict[str, Any] = {}
    for currency, micros in totals.get("lifetime", {}).items():
        out[f"earnings_lifetime_{currency.lower()}"] = _amount(micros)
        out[f"earnings_30d_{currency.lower()}"] = _amount(totals.get("recent", {}).get(currency, 0))
    payout = totals.get("payout")
    if payout:
        at = pd.Timestamp(payout["at_us"] * 1000, tz="UTC")
        out["last_payout_at"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        out["last_payout_amount"] = _amount(payout["amount_micros"])
        out["last_payout_currency"] = payout["currency"]
    return out


def attributes(totals: dict[str, dict[str, Any]], m: Mapping) -> pd.DataFrame:
    """Per creator (uuid index) the income attributes the mapping names, columns without `custom.`."""
    names = tuple(m.income.attributes) if m.income else ()
    if not totals or not names:
        return pd.DataFrame()
    rows = {uuid: attribute_values(t) for uuid, t in totals.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame = frame[[c for c in frame.columns if base_name(c) in names]]
    frame.index.name = "uuid"
    return frame.dropna(axis=1, how="all")


PAYOUT_ATTRIBUTES = ("last_payout_at", "last_payout_amount", "last_payout_currency")


def cleared(totals: dict[str, dict[str, Any]], m: Mapping) -> dict[str, list[str]]:
    """Per creator whose last payout is gone (`payout_gone`) the last_payout_* attributes the mapping
    sends (names without `custom.`), to delete at Insider."""
    names = [n for n in PAYOUT_ATTRIBUTES if m.income and n in m.income.attributes]
    if not names:
        return {}
    return {uuid: list(names) for uuid, t in totals.items() if t.get("payout_gone")}


def base_name(column: str) -> str | None:
    """The income attribute a column (with or without `custom.`) is, or None: `earnings_30d_usd` ->
    `earnings_30d`."""
    name = column.removeprefix("custom.")
    for attribute, (_, per_currency, _) in ATTRIBUTES.items():
        if name == attribute and not per_currency:
            return attribute
        if per_currency and re.fullmatch(rf"{attribute}_[a-z]{{3}}", name):
            return attribute
    return None


def column_type(column: str) -> str | None:
    name = base_name(column)
    return ATTRIBUTES[name][0] if name else None
