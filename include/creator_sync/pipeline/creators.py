"""One row per creator (InsightIQ user): identifiers, default attributes, per-platform counts.

A creator with several connected accounts is one person: their profiles are merged, personal fields taken
from the most recently updated profile that has them (`updated_at`), platform counts summed per platform.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from creator_sync.pipeline import identity
from creator_sync.pipeline.jsonfrag import json_object, number_literal, string_literal
from creator_sync.pipeline.mapping import Mapping, insider_name
from creator_sync.pipeline.sources import column

PERSONAL = ["name", "surname", "gender", "country", "language", "email", "phone_number"]


def source_columns(m: Mapping) -> dict[str, list[str]]:
    """The columns of users, profiles and accounts that `build_creators` reads (no other is loaded)."""
    personal = [m.sources[name] for name in [*PERSONAL, "phone_region"]]
    return {
        "users": ["id", m.sources["custom.insightiq_external_id"]],
        "profiles": list(
            dict.fromkeys(
                [
                    *("user.id", "account.id", "work_platform.name", "updated_at", "full_name"),
                    *personal,
                    *m.profile_metrics.values(),
                ]
            )
        ),
        "accounts": ["id", "user.id", "work_platform.name"],
    }


def creator_ids(users: pd.DataFrame, profiles: pd.DataFrame, accounts: pd.DataFrame) -> pd.Index:
    """Every InsightIQ user id seen in users, profiles or accounts (= the run's fetched creators)."""
    ids = pd.concat([column(users, "id"), column(profiles, "user.id"), column(accounts, "user.id")])
    ids = ids.dropna().astype("str")
    return pd.Index(sorted(ids[ids != ""].unique()), name="uuid", dtype="str")


def _platforms(profiles: pd.DataFrame, accounts: pd.DataFrame) -> pd.Series:
    """Profile platform name, filled from its account when the profile row lacks it."""
    platform = column(profiles, "work_platform.name").astype("str")
    if len(accounts) and "id" in accounts:
        by_account = accounts.drop_duplicates("id", keep="last").set_index("id")
        platform = platform.fillna(
            column(profiles, "account.id").map(column(by_account, "work_platform.name"))
        )
    return platform.map(lambda v: insider_name(v) if isinstance(v, str) else None)


def _names(profiles: pd.DataFrame, m: Mapping) -> tuple[pd.Series, pd.Series]:
    first = column(profiles, m.sources["name"]).astype("str").str.strip().replace("", None)
    last = column(profiles, m.sources["surname"]).astype("str").str.strip().replace("", None)
    parts = column(profiles, "full_name").astype("str").str.strip().str.extract(r"^(\S+)\s*(.*)$")
    split = first.isna() & last.isna()
    first = first.mask(split, parts[0])
    last = last.mask(split, parts[1].replace("", None))
    return first, last


def _personal(profiles: pd.DataFrame, accounts: pd.DataFrame, m: Mapping) -> pd.DataFrame:
    """Per profile row: the mapped personal fields, then the newest non-empty value per creator."""
    rows = pd.DataFrame(index=profiles.index)
    rows["uuid"] = column(profiles, "user.id").astype("str")
    rows["updated_at"] = pd.to_datetime(
        column(profiles, "updated_at"), utc=True, format="ISO8601", errors="coerce"
    )
    rows["name"], rows["surname"] = _names(profiles, m)
    rows["gender"] = column(profiles, m.sources["gender"]).astype("str").str.strip().str.lower()
    country = column(profiles, m.sources["country"]).astype("str").str.strip().str.upper()
    rows["country"] = country.where(country.str.fullmatch(r"[A-Z]{2}").fillna(False).astype(bool))
    rows["language"] = column(profiles, m.sources["language"]).astype("str").str.strip().str.lower()
    if m.language_format == "locale":  # "en" + "US" -> "en_US"; the language alone without a country
        rows["language"] = (rows["language"] + "_" + rows["country"]).fillna(rows["language"])
    rows["email"] = identity.normalise_email(identity.pick(column(profiles, m.sources["email"]), "email_id"))
    phones = identity.pick(column(profiles, m.sources["phone_number"]), "phone_number")
    rows["phone_number"] = identity.normalise_phone(phones, column(profiles, m.sources["phone_region"]))
    rows = rows.replace("", None).dropna(subset=["uuid"])
    rows = rows.sort_values(["uuid", "updated_at"], ascending=[True, False], na_position="last")
    return rows.groupby("uuid", sort=True)[PERSONAL].first()


def _platform_counts(profiles: pd.DataFrame, accounts: pd.DataFrame, m: Mapping) -> pd.DataFrame:
    if not len(profiles) or not m.profile_metrics:
        return pd.DataFrame(index=pd.Index([], name="uuid", dtype="str"))
    counts = pd.DataFrame(
        {
            name: pd.to_numeric(column(profiles, src), errors="coerce")
            for name, src in m.profile_metrics.items()
        }
    )
    counts["uuid"] = column(profiles, "user.id").astype("str")
    counts["platform"] = _platforms(profiles, accounts)
    counts = counts.dropna(subset=["uuid", "platform"])
    return per_platform(counts, list(m.profile_metrics))


def per_platform(counts: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """(uuid, platform, metric...) rows -> one row per uuid with `{platform}_{metric}` columns (summed)."""
    summed = counts.groupby(["uuid", "platform"])[metrics].sum(min_count=1)
    wide = summed.unstack("platform")
    wide.columns = [f"{platform}_{metric}" for metric, platform in wide.columns]
    return wide.dropna(axis=1, how="all")


def build_creators(
    users: pd.DataFrame, profiles: pd.DataFrame, accounts: pd.DataFrame, m: Mapping
) -> pd.DataFrame:
    """Index uuid; identifier + attribute columns; custom metric columns named `custom.{attribute}`."""
    ids = creator_ids(users, profiles, accounts)
    out = pd.DataFrame(index=ids)
    if len(users) and "id" in users:
        by_id = users.assign(id=users["id"].astype("str")).drop_duplicates("id", keep="last").set_index("id")
        external = column(by_id, m.sources["custom.insightiq_external_id"]).astype("str")
        out["insightiq_external_id"] = external.reindex(ids).replace("", None)
    else:
        out["insightiq_external_id"] = pd.Series(None, index=ids, dtype="str")
    if len(profiles):
        out = out.join(_personal(profiles, accounts, m))
        counts = _platform_counts(profiles, accounts, m)
        out = out.join(counts.add_prefix("custom."))
    for name in PERSONAL:
        if name not in out:
            out[name] = pd.Series(None, index=ids, dtype="str")
    return out


def add_metrics(creators: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Join per-platform metrics computed elsewhere (content engagement) as `custom.*` columns."""
    if metrics.empty:
        return creators
    return creators.join(metrics.add_prefix("custom."), how="left")


def head_json(creators: pd.DataFrame) -> pd.Series:
    """`{"identifiers": {...}, "attributes": {...}}` per creator, built column-wise; missing keys left out."""

    def s(name: str) -> pa.Array:
        return string_literal(pa.array(creators[name].astype("object"), pa.string(), from_pandas=True))

    uuid = string_literal(pa.array(creators.index.astype("object"), pa.string()))
    custom_ids = json_object([("insightiq_external_id", s("insightiq_external_id"))], empty_as_null=True)
    identifiers = json_object(
        [("uuid", uuid), ("email", s("email")), ("phone_number", s("phone_number")), ("custom", custom_ids)]
    )
    metric_cols = sorted(c for c in creators.columns if c.startswith("custom."))
    members = [(n, s(n)) for n in ("name", "surname", "gender", "country", "language")]
    if metric_cols:
        metrics = [
            (
                c.removeprefix("custom."),
                number_literal(pa.array(creators[c], pa.float64(), from_pandas=True), integer=True),
            )
            for c in metric_cols
        ]
        members.append(("custom", json_object(metrics, empty_as_null=True)))
    attributes = json_object(members, empty_as_null=True)
    heads = json_object([("identifiers", identifiers), ("attributes", attributes)])
    return pd.Series(heads.to_pylist(), index=creators.index, dtype="str")
