"""One row per creator (InsightIQ user): identifiers and attributes, and their JSON head.

A creator with several connected accounts is one person: the mapping's engine (creator_sync.pipeline.
attributes) reduces their rows per attribute (personal fields from the most recently updated profile that
has them, platform counts summed per platform, ...); `head_json` renders each column as its Insider type.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creator_sync.pipeline import attributes
from creator_sync.pipeline.jsonfrag import json_object, number_literal, string_literal
from creator_sync.pipeline.mapping import Mapping
from creator_sync.pipeline.sources import column


def source_columns(m: Mapping) -> dict[str, list[str]]:
    """The columns of users, profiles, accounts (and audience, when mapped) that `build_creators` reads
    (no other is loaded): derived from the mapping (creator_sync.pipeline.attributes)."""
    return attributes.source_columns(m)


def creator_ids(users: pd.DataFrame, profiles: pd.DataFrame, accounts: pd.DataFrame) -> pd.Index:
    """Every InsightIQ user id seen in users, profiles or accounts (= the run's fetched creators)."""
    ids = pd.concat([column(users, "id"), column(profiles, "user.id"), column(accounts, "user.id")])
    ids = ids.dropna().astype("str")
    return pd.Index(sorted(ids[ids != ""].unique()), name="uuid", dtype="str")


def per_platform(counts: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """(uuid, platform, metric...) rows -> one row per uuid with `{platform}_{metric}` columns (summed)."""
    summed = counts.groupby(["uuid", "platform"])[metrics].sum(min_count=1)
    wide = summed.unstack("platform")
    wide.columns = [f"{platform}_{metric}" for metric, platform in wide.columns]
    return wide.dropna(axis=1, how="all")


def build_creators(
    users: pd.DataFrame,
    profiles: pd.DataFrame,
    accounts: pd.DataFrame,
    m: Mapping,
    *,
    audience: pd.DataFrame | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Index uuid; one column per identifier (`identifiers.<field>`, `identifiers.custom.<name>`) and
    attribute (`<name>`, `custom.<name>`, per platform `custom.<platform>_<name>`). `as_of`: the
    reference time of time-relative attributes (age), the end of the run's data interval."""
    ids = creator_ids(users, profiles, accounts)
    frames = {"users": users, "profiles": profiles, "accounts": accounts}
    if audience is not None:
        frames["audience"] = audience
    if len(users) and "id" in users:
        frames["users"] = users.assign(id=users["id"].astype("str"))
    out = attributes.build_attributes(frames, ids, m, as_of or datetime.now(UTC))
    for name in attributes.CONTACT:  # validation reads them under their Insider names
        mapped = attributes.IDENTIFIER_COLUMN + name
        out[name] = out.pop(mapped) if mapped in out else pd.Series(None, index=ids, dtype="str")
    return out


def add_metrics(creators: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Join per-platform metrics computed elsewhere (content engagement) as `custom.*` columns."""
    if metrics.empty:
        return creators
    return creators.join(metrics.add_prefix("custom."), how="left")


def _fragment(values: pd.Series, kind: str) -> pa.Array:
    """A column as JSON fragments of its Insider type; missing -> null (the key is left out)."""
    if kind in ("integer", "number"):
        return number_literal(pa.array(values, pa.float64(), from_pandas=True), integer=kind == "integer")
    if kind == "boolean":
        flags = pa.array(values.astype("object"), pa.bool_(), from_pandas=True)
        return pc.if_else(flags, "true", "false")
    text = pa.array(values.astype("object"), pa.string(), from_pandas=True)
    return text if kind in ("array", "number_array") else string_literal(text)  # arrays: JSON text


def head_json(creators: pd.DataFrame, m: Mapping) -> pd.Series:
    """`{"identifiers": {...}, "attributes": {...}}` per creator, built column-wise; missing keys left out.

    A creator with an array attribute also carries `"append": false, "not_append": true`: Insider appends
    array values unless told otherwise per request, and an attribute here is the whole current list. The
    docs name both flags (`append` wins when both are there); sending both with one meaning holds under
    either."""
    types = attributes.column_types(m, [c for c in creators.columns if c.startswith("custom.")])

    def s(name: str) -> pa.Array:
        return string_literal(pa.array(creators[name].astype("object"), pa.string(), from_pandas=True))

    prefix = attributes.IDENTIFIER_COLUMN + "custom."
    uuid = string_literal(pa.array(creators.index.astype("object"), pa.string()))
    custom_ids = [(c.removeprefix(prefix), s(c)) for c in creators.columns if c.startswith(prefix)]
    id_members = [("uuid", uuid)] + [(n, s(n)) for n in attributes.CONTACT if n in m.identifiers]
    if custom_ids:
        id_members.append(("custom", json_object(custom_ids, empty_as_null=True)))
    identifiers = json_object(id_members)
    defaults = [n for n in m.attributes if not n.startswith("custom.") and n in creators]
    members = [(n, _fragment(creators[n], m.attributes[n].type)) for n in defaults]
    custom = sorted(c for c in creators.columns if c.startswith("custom."))
    if custom:
        fields = [(c.removeprefix("custom."), _fragment(creators[c], types[c])) for c in custom]
        members.append(("custom", json_object(fields, empty_as_null=True)))
    head = [("identifiers", identifiers), ("attributes", json_object(members, empty_as_null=True))]
    arrays = [c for c in custom if types[c] in ("array", "number_array")]
    arrays += [n for n in defaults if m.attributes[n].type in ("array", "number_array")]
    if arrays:
        has = pa.array(creators[arrays].notna().any(axis=1).to_numpy())
        head += [("append", pc.if_else(has, "false", None)), ("not_append", pc.if_else(has, "true", None))]
    heads = json_object(head)
    return pd.Series(heads.to_pylist(), index=creators.index, dtype="str")
