"""The attribute engine: every identifier and attribute of the mapping, computed the same way.

Per attribute: the source column of its resource (users, profiles, accounts, audience), its transforms row
by row (``reducers.TRANSFORMS``), its fallback where the value is missing, its ``where`` filter, then its
reducer over each creator's rows (``reducers.REDUCERS``). Adding an attribute from a column the fetch
already writes is a mapping change, no code. A column the files lack gives no value (the key is left out).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from creator_sync.pipeline.clearing import CONNECTED
from creator_sync.pipeline.clearing import STATUS as CLEARING_STATUS
from creator_sync.pipeline.engagement import ATTRIBUTES as ENGAGEMENT_ATTRIBUTES
from creator_sync.pipeline.income import column_type as income_type
from creator_sync.pipeline.mapping import Mapping, insider_name
from creator_sync.pipeline.mapping_schema import AttributeSpec, IdentifierSpec
from creator_sync.pipeline.reducers import REDUCERS, TRANSFORMS, Context, Rows
from creator_sync.pipeline.sources import column

# the resources creators are built from, and the column naming each row's creator
USER_KEY = {"users": "id", "profiles": "user.id", "accounts": "user.id", "audience": "user.id"}
# read beside the mapped columns: the creator, the platform, the row's age (reducer `newest`)
_CONTEXT_COLUMNS = {
    "users": ["id"],
    "profiles": ["user.id", "account.id", "work_platform.name", "updated_at"],
    "accounts": ["id", "user.id", "work_platform.name", "updated_at", "status"],  # status: pipeline.clearing
    "audience": ["user.id", "work_platform.name", "updated_at"],
}
IDENTIFIER_COLUMN = "identifiers."  # prefix of identifier columns in the creators frame
CONTACT = ("email", "phone_number")  # the contact identifiers: columns under their Insider names


def _split(source: str) -> tuple[str, str]:
    resource, name = source.split(".", 1)
    return resource, name


def specs(m: Mapping) -> dict[str, IdentifierSpec | AttributeSpec]:
    """Creators-frame column -> spec: identifiers (``identifiers.<field>``) then the attributes that are
    on (opt-in ones without a source are off), contents-based ones excluded (the transform's pass 2)."""
    out: dict[str, IdentifierSpec | AttributeSpec] = {
        IDENTIFIER_COLUMN + name: spec for name, spec in m.identifiers.items() if name != "uuid"
    }
    out.update({name: spec for name, spec in m.active().items() if _split(spec.source)[0] in USER_KEY})
    return out


def source_columns(m: Mapping) -> dict[str, list[str]]:
    """The columns of each creator resource the engine reads (no other column is loaded). users,
    profiles and accounts are always read (they name the fetched creators); audience when mapped."""
    wanted: dict[str, list[str]] = {r: list(_CONTEXT_COLUMNS[r]) for r in ("users", "profiles", "accounts")}
    for spec in specs(m).values():
        resource, name = _split(spec.source)
        extra = [name]
        extra += [_split(s)[1] for s in _fallback_sources(spec) if _split(s)[0] == resource]
        extra += list(getattr(spec, "where", {}) or {})
        if getattr(spec, "region_from", None):
            extra.append(_split(spec.region_from)[1])
        wanted.setdefault(resource, list(_CONTEXT_COLUMNS[resource])).extend(extra)
    return {resource: list(dict.fromkeys(cols)) for resource, cols in wanted.items()}


def _fallback_sources(spec) -> list[str]:
    fallback = getattr(spec, "fallback", None)
    return [fallback.source, *fallback.when_empty] if fallback else []


def _platforms(frames: dict[str, pd.DataFrame], resource: str) -> pd.Series:
    """Each row's platform, Insider-named; a profile without one takes its account's."""
    frame = frames[resource]
    platform = column(frame, "work_platform.name").astype("str")
    accounts = frames.get("accounts")
    if resource == "profiles" and accounts is not None and len(accounts) and "id" in accounts:
        by_account = accounts.drop_duplicates("id", keep="last").set_index("id")
        platform = platform.fillna(column(frame, "account.id").map(column(by_account, "work_platform.name")))
    codes, names = pd.factorize(platform)  # each distinct name normalised once
    named = np.array([insider_name(v) if isinstance(v, str) else None for v in names] + [None], dtype=object)
    return pd.Series(named[codes], index=frame.index, dtype="object")  # code -1 (missing) -> the last, None


def _apply(names: list[str], values: pd.Series, ctx: Context) -> pd.Series:
    for name in names:
        values = TRANSFORMS[name].fn(values, ctx)
    return values


def _blank(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip().replace("", None).isna()


class _Resource:
    """One resource's rows of a bucket, with what every attribute of it shares (user ids, platforms,
    update times) and the per-row values computed so far (`language: format locale` reads `country`)."""

    def __init__(self, frames: dict[str, pd.DataFrame], resource: str, as_of: datetime):
        self.frames, self.resource = frames, resource
        self.frame = frames[resource]
        self.as_of = as_of
        self.uuid = column(self.frame, USER_KEY[resource]).astype("str")
        self.platform = _platforms(frames, resource)
        self.updated_at = pd.to_datetime(
            column(self.frame, "updated_at"), utc=True, format="ISO8601", errors="coerce"
        )
        self.row_values: dict[str, pd.Series] = {}

    def values(self, name: str, spec, m: Mapping) -> pd.Series:
        frame = self.frame
        region = column(frame, _split(spec.region_from)[1]) if getattr(spec, "region_from", None) else None
        ctx = Context(frame, self.as_of, region)
        values = _apply(spec.transform, column(frame, _split(spec.source)[1]), ctx)
        fallback = getattr(spec, "fallback", None)
        if fallback is not None:
            use = values.isna()
            for other in fallback.when_empty:
                use &= _blank(column(frame, _split(other)[1]))
            values = values.mask(
                use, _apply(fallback.transform, column(frame, _split(fallback.source)[1]), ctx)
            )
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            values = values.replace("", None)
        if name == "language" and m.language_format == "locale" and "country" in self.row_values:
            values = (values + "_" + self.row_values["country"]).fillna(values)  # "en" + "US" -> "en_US"
        self.row_values[name] = values
        return values

    def open_rows(self) -> pd.Series:
        """Rows of an account that is CONNECTED or of unknown status (`connected_only`): accounts by their
        own status, profiles by their account's (an account the run lacks: unknown, kept; the rule of
        creator_sync.pipeline.clearing, nothing is left out on a guess); other resources: every row."""
        if self.resource == "accounts":
            status = column(self.frame, CLEARING_STATUS)
        elif self.resource == "profiles":
            accounts = self.frames.get("accounts")
            if accounts is None or not len(accounts) or "id" not in accounts:
                return pd.Series(True, index=self.frame.index)
            by_id = accounts.drop_duplicates("id", keep="last").set_index("id")
            status = column(self.frame, "account.id").map(column(by_id, CLEARING_STATUS))
        else:
            return pd.Series(True, index=self.frame.index)
        status = status.astype("object")
        return ((status == CONNECTED) | status.isna()).astype(bool)

    def rows(self, values: pd.Series, spec) -> Rows:
        keep = pd.Series(True, index=self.frame.index)
        for name, allowed in (getattr(spec, "where", {}) or {}).items():
            keep &= column(self.frame, name).astype("str").isin([str(v) for v in allowed])
        if getattr(spec, "connected_only", False):
            keep &= self.open_rows()
        return Rows(self.uuid[keep], self.platform[keep], self.updated_at[keep], values[keep])


def build_attributes(
    frames: dict[str, pd.DataFrame], ids: pd.Index, m: Mapping, as_of: datetime
) -> pd.DataFrame:
    """Index `ids`; one column per identifier / attribute (per-platform ones: one per platform seen)."""
    out = pd.DataFrame(index=ids)
    resources: dict[str, _Resource] = {}
    for name, spec in specs(m).items():
        resource = _split(spec.source)[0]
        if not len(frames.get(resource, ())):
            continue
        if resource not in resources:
            resources[resource] = _Resource(frames, resource, as_of)
        res = resources[resource]
        reducer = REDUCERS[getattr(spec, "reduce", "newest")]
        result = reducer.fn(res.rows(res.values(name, spec, m), spec), spec)
        if reducer.per_platform:
            out = out.join(_wide(result, name.removeprefix("custom.")), how="left")
        else:
            out[name] = result.reindex(ids)
    return out


def _wide(per: pd.DataFrame, name: str) -> pd.DataFrame:
    """(uuid, platform, value) rows -> `custom.{platform}_{name}` columns."""
    if per.empty:
        return pd.DataFrame(index=pd.Index([], name="uuid", dtype="str"))
    wide = per.set_index(["uuid", "platform"])["value"].unstack("platform")
    wide.columns = [f"custom.{platform}_{name}" for platform in wide.columns]
    return wide.dropna(axis=1, how="all")


def column_types(m: Mapping, columns: list[str]) -> dict[str, str]:
    """Insider type of each creators-frame column: the spec's; a per-platform column
    (`custom.{platform}_{name}`) that of the longest per-platform name it ends with; content metrics
    (`platform_attributes.from_contents`) are integers; engagement-window ones as
    `creator_sync.pipeline.engagement.ATTRIBUTES` types them; income ones (`custom.earnings_30d_usd`, ...) as
    `creator_sync.pipeline.income` types them."""
    per_platform = {
        name.removeprefix("custom."): spec.type
        for name, spec in m.attributes.items()
        if REDUCERS[spec.reduce].per_platform
    }
    per_platform.update({name: "integer" for name in m.content_metrics})
    per_platform.update({name: kind for name, (kind, _) in ENGAGEMENT_ATTRIBUTES.items()})
    types = {}
    for col in columns:
        spec = m.attributes.get(col)
        if spec is None and (kind := income_type(col)) is not None:
            types[col] = kind
            continue
        if spec is not None and not REDUCERS[spec.reduce].per_platform:
            types[col] = spec.type
            continue
        suffixes = [n for n in per_platform if col.endswith(f"_{n}")]
        types[col] = per_platform[max(suffixes, key=len)] if suffixes else "integer"
    return types
