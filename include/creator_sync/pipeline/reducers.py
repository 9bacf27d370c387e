"""The named transforms and reducers ``insider_mapping.yaml`` attributes use (docs/mapping.md lists them).

A transform maps one source column, row by row (pandas Series -> Series of the same index); a reducer
turns the transformed rows of a creator into the attribute's value (``Rows`` -> Series indexed by user id),
or, for the ``*_per_platform`` ones, into one value per platform (a frame of uuid, platform, value).
Blank text is missing (None): a missing value leaves the attribute out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from creator_sync.pipeline import addresses, identity


@dataclass(frozen=True)
class Context:
    """What a transform may read beside its column: the whole frame (for `region_from`) and the run's
    reference time (ages are whole years at the end of the run's data interval)."""

    frame: pd.DataFrame
    as_of: datetime
    region: pd.Series | None = None


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str")


def _blank_none(values: pd.Series) -> pd.Series:
    return values.replace("", None)


def strip(values: pd.Series, ctx: Context) -> pd.Series:
    return _blank_none(_text(values).str.strip())


def lowercase(values: pd.Series, ctx: Context) -> pd.Series:
    return _text(values).str.lower()


def uppercase(values: pd.Series, ctx: Context) -> pd.Series:
    return _text(values).str.upper()


def iso_country(values: pd.Series, ctx: Context) -> pd.Series:
    text = _text(values).str.strip().str.upper()
    return text.where(text.str.fullmatch(r"[A-Z]{2}").fillna(False).astype(bool))


def _name_parts(values: pd.Series) -> pd.DataFrame:
    return _text(values).str.strip().str.extract(r"^(\S+)\s*(.*)$")


def first_word(values: pd.Series, ctx: Context) -> pd.Series:
    return _name_parts(values)[0]


def rest_words(values: pd.Series, ctx: Context) -> pd.Series:
    return _name_parts(values)[1].replace("", None)


def first_email(values: pd.Series, ctx: Context) -> pd.Series:
    return identity.normalise_email(identity.pick(values, "email_id"))


def e164_phone(values: pd.Series, ctx: Context) -> pd.Series:
    region = ctx.region if ctx.region is not None else pd.Series(None, index=values.index, dtype="object")
    return identity.normalise_phone(identity.pick(values, "phone_number"), region)


def boolean(values: pd.Series, ctx: Context) -> pd.Series:
    def one(v: object) -> bool | None:
        if isinstance(v, bool | np.bool_):
            return bool(v)
        text = "" if v is None or v is pd.NA or v != v else str(v).strip().lower()
        return {"true": True, "1": True, "false": False, "0": False}.get(text)

    return values.astype("object").map(one).astype("object")


def number(values: pd.Series, ctx: Context) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _dates(values: pd.Series) -> pd.Series:
    """Dates as InsightIQ writes them: ISO 8601 ("1989-11-26"), or the MM/DD/YYYY of the vendor's own
    date-of-birth example ("11/26/1989"); anything else is unknown (NaT), never guessed."""
    iso = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    us = pd.to_datetime(values.where(iso.isna()), utc=True, format="%m/%d/%Y", errors="coerce")
    return iso.fillna(us)


def age_years(values: pd.Series, ctx: Context) -> pd.Series:
    born = _dates(values)
    now = pd.Timestamp(ctx.as_of)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    years = pd.Series(
        [
            now.year - b.year - ((now.month, now.day) < (b.month, b.day)) if pd.notna(b) else np.nan
            for b in born
        ],
        index=values.index,
        dtype="float64",
    )
    return years.where((years >= 0) & (years < 130))


def rfc3339_date(values: pd.Series, ctx: Context) -> pd.Series:
    days = _dates(values).dt.strftime("%Y-%m-%dT00:00:00Z")
    return days.astype("object").where(days.notna(), None)


def _items(raw: object) -> list:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if isinstance(raw, dict):
        return [raw]
    return list(raw) if isinstance(raw, list | tuple | np.ndarray) else []


def address_city(raw: object) -> str | None:
    """The city of a list of addresses: the first structured `city` key; else the first free-text address
    (`address`, or the item itself when it is text) the conservative rule reads a city from
    (creator_sync.pipeline.addresses.city_of); else None."""
    items = _items(raw) or ([raw] if isinstance(raw, str) else [])  # text that is no JSON: one address
    for item in items:
        city = item.get("city") if isinstance(item, dict) else None
        if city is not None and str(city).strip():
            return str(city).strip()
    for item in items:
        city = addresses.city_of(item.get("address") if isinstance(item, dict) else item)
        if city is not None:
            return city
    return None


def first_city(values: pd.Series, ctx: Context) -> pd.Series:
    return values.astype("object").map(address_city).astype("object")


@dataclass(frozen=True)
class Transform:
    fn: Callable[[pd.Series, Context], pd.Series]
    doc: str


TRANSFORMS: dict[str, Transform] = {
    "strip": Transform(strip, "text trimmed; blank -> missing"),
    "lowercase": Transform(lowercase, "lower case"),
    "uppercase": Transform(uppercase, "upper case"),
    "iso_country": Transform(iso_country, "ISO 3166-1 alpha-2, upper case; missing unless two letters"),
    "first_word": Transform(first_word, "the first word (of a full name)"),
    "rest_words": Transform(rest_words, "what follows the first word; missing if nothing"),
    "first_email": Transform(first_email, "first `email_id` of the JSON list; trimmed, lower case"),
    "e164_phone": Transform(
        e164_phone, "first `phone_number` of the JSON list, E.164 (`phonenumbers`, region = `region_from`)"
    ),
    "boolean": Transform(boolean, "true / false (booleans or their text); anything else missing"),
    "number": Transform(number, "a number; text that is not one -> missing"),
    "age_years": Transform(age_years, "whole years from a date to the end of the run's data interval"),
    "rfc3339_date": Transform(rfc3339_date, "a date as Insider's Date/Time: `1993-03-12T00:00:00Z`"),
    "first_city": Transform(
        first_city,
        "`city` of the first address (JSON list) that has one; else the city a conservative rule reads from "
        "the first free-text address it is sure of (never a state, postcode, country or street)",
    ),
}


# --- reducers ---------------------------------------------------------------------------------------------
@dataclass
class Rows:
    """A resource's rows for one attribute: user id, platform (Insider-named), update time, value."""

    uuid: pd.Series
    platform: pd.Series
    updated_at: pd.Series
    value: pd.Series

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"uuid": self.uuid, "platform": self.platform, "updated_at": self.updated_at, "value": self.value}
        ).dropna(subset=["uuid"])


def newest(rows: Rows, spec) -> pd.Series:
    frame = rows.frame().dropna(subset=["value"])
    frame = frame.sort_values(["uuid", "updated_at"], ascending=[True, False], na_position="last")
    return frame.groupby("uuid", sort=True)["value"].first()


def last_row(rows: Rows, spec) -> pd.Series:
    frame = rows.frame()
    return frame.drop_duplicates("uuid", keep="last").set_index("uuid")["value"].dropna()


def total(rows: Rows, spec) -> pd.Series:
    frame = rows.frame()
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame.groupby("uuid", sort=True)["value"].sum(min_count=1).dropna()


def sum_per_platform(rows: Rows, spec) -> pd.DataFrame:
    frame = rows.frame().dropna(subset=["platform"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame.groupby(["uuid", "platform"])["value"].sum(min_count=1).dropna().reset_index()


def newest_per_platform(rows: Rows, spec) -> pd.DataFrame:
    frame = rows.frame().dropna(subset=["platform", "value"])
    frame = frame.sort_values(["uuid", "platform", "updated_at"], ascending=[True, True, False])
    return frame.groupby(["uuid", "platform"], sort=True)["value"].first().reset_index()


def max_platform(rows: Rows, spec) -> pd.Series:
    """The platform whose summed value is largest (ties: the first platform name in order)."""
    per = sum_per_platform(rows, spec)
    if per.empty:
        return pd.Series(dtype="object")
    per = per.sort_values(["uuid", "value", "platform"], ascending=[True, False, True])
    return per.groupby("uuid", sort=True)["platform"].first()


def platforms(rows: Rows, spec) -> pd.Series:
    """The sorted distinct platforms of the rows (after `where`), as a JSON array."""
    frame = rows.frame().dropna(subset=["platform"]).drop_duplicates(["uuid", "platform"])
    frame = frame.sort_values(["uuid", "platform"])
    listed: dict[str, list[str]] = {}
    for uuid, platform in zip(frame["uuid"], frame["platform"], strict=True):  # one pass, no per-group frame
        listed.setdefault(uuid, []).append(platform)
    return pd.Series({uuid: json.dumps(names) for uuid, names in listed.items()}, dtype="object")


def _shares(rows: Rows, spec, by: list[str]) -> pd.DataFrame:
    """(by..., item, share): a list column's {key, value} items, shares averaged over the group's rows
    (accounts), the `spec.top` largest per group."""
    out = []
    keys = [spec.key] if isinstance(spec.key, str) else list(spec.key)
    frame = rows.frame().dropna(subset=["value", *by])
    for group, raw in zip(zip(*(frame[c] for c in by), strict=True), frame["value"], strict=True):
        for item in _items(raw):
            if not isinstance(item, dict) or any(item.get(k) is None for k in keys):
                continue
            name = "_".join(str(item[k]) for k in keys)
            share = pd.to_numeric(item.get("value"), errors="coerce")
            if share is not None and not math.isnan(share):
                out.append((*group, name.lower() if len(keys) > 1 else name, float(share)))
    if not out:
        return pd.DataFrame(columns=[*by, "item", "share"])
    shares = pd.DataFrame(out, columns=[*by, "item", "share"])
    rows_per_group = frame.groupby(by).size().rename("rows")
    shares = shares.groupby([*by, "item"], as_index=False)["share"].sum().join(rows_per_group, on=by)
    shares["share"] = (shares["share"] / shares["rows"]).round(2)
    shares = shares.sort_values([*by, "share", "item"], ascending=[True] * len(by) + [False, True])
    return shares.groupby(by, sort=True).head(spec.top)


def _lists(shares: pd.DataFrame, by: list[str], column: str) -> pd.Series | pd.DataFrame:
    """One JSON array per group, in the frame's order (one pass, no per-group frame)."""
    listed: dict[tuple, list] = {}
    for *group, value in zip(*(shares[c] for c in by), shares[column], strict=True):
        listed.setdefault(tuple(group), []).append(value)
    texts = {g: json.dumps(v, ensure_ascii=False) for g, v in listed.items()}
    if by == ["uuid"]:
        return pd.Series({g[0]: t for g, t in texts.items()}, dtype="object")
    return pd.DataFrame([(*g, t) for g, t in texts.items()], columns=[*by, "value"])


def top_items(rows: Rows, spec) -> pd.Series:
    return _lists(_shares(rows, spec, ["uuid"]), ["uuid"], "item")


def top_shares(rows: Rows, spec) -> pd.Series:
    return _lists(_shares(rows, spec, ["uuid"]), ["uuid"], "share")


def top_items_per_platform(rows: Rows, spec) -> pd.DataFrame:
    return _lists(_shares(rows, spec, ["uuid", "platform"]), ["uuid", "platform"], "item")


def top_shares_per_platform(rows: Rows, spec) -> pd.DataFrame:
    return _lists(_shares(rows, spec, ["uuid", "platform"]), ["uuid", "platform"], "share")


@dataclass(frozen=True)
class Reducer:
    fn: Callable
    types: tuple[str, ...]  # the attribute types it can produce (the first is the usual one)
    doc: str
    per_platform: bool = False  # one attribute per platform: custom.{platform}_{name}
    needs_key: bool = False


_SCALAR = ("string", "integer", "number", "boolean", "date")
REDUCERS: dict[str, Reducer] = {
    "newest": Reducer(newest, _SCALAR, "the newest non-empty value (by the rows' `updated_at`)"),
    "last_row": Reducer(last_row, _SCALAR, "the value of the creator's last row (users: one per creator)"),
    "sum": Reducer(total, ("integer", "number"), "the sum over all the creator's rows (all platforms)"),
    "sum_per_platform": Reducer(
        sum_per_platform,
        ("integer", "number"),
        "the sum per platform (two accounts on one platform add)",
        True,
    ),
    "newest_per_platform": Reducer(
        newest_per_platform, _SCALAR, "the newest non-empty value per platform", True
    ),
    "max_platform": Reducer(max_platform, ("string",), "the platform whose summed value is largest"),
    "platforms": Reducer(platforms, ("array",), "the sorted platforms of the rows (after `where`)"),
    "top_items": Reducer(
        top_items, ("array",), "the `top` items (by `key`) of a list of {key, value} shares", needs_key=True
    ),
    "top_shares": Reducer(
        top_shares, ("number_array",), "the shares (%) of those items, same order", needs_key=True
    ),
    "top_items_per_platform": Reducer(
        top_items_per_platform, ("array",), "`top_items` per platform", per_platform=True, needs_key=True
    ),
    "top_shares_per_platform": Reducer(
        top_shares_per_platform,
        ("number_array",),
        "`top_shares` per platform",
        per_platform=True,
        needs_key=True,
    ),
}
