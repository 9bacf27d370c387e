"""Engagement over a rolling window (``CREATOR_SYNC_ENGAGEMENT_WINDOW_DAYS``, 30 by default), per platform,
from the content items the run read.

The contents stream by in chunks (creator_sync.pipeline.transform, pass 2); per chunk the items published
inside [end - window, end) are summed per (creator, platform) - posts, the mapped counts
(``platform_attributes.engagement_window``), the newest publication time - and the partial sums are
spooled to their bucket; per bucket they become the attributes of ``ATTRIBUTES``.

Honest about coverage: a run reads the contents of its own read window (an hourly run: its hours and the
look-back; the weekly sweep: a week; a backfill: its days; a targeted run: the whole engagement window of
its accounts, creator_sync.sync.targeted_fetch). The attributes are sent only by a run whose contents cover
the whole engagement window (``full_window``: a backfill, a targeted run - so a webhook such as
CONTENTS.UPDATED refreshes its account's values within minutes - or a run with a look-back of at least the
window); a run that read less leaves them out and Insider keeps the last full-window values, so
a value never describes a shorter span than its name says, and an hourly run's new post does not make
every posting creator's attributes "changed" (a full re-send) each hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creator_sync.pipeline.events import platform_name
from creator_sync.pipeline.mapping import EventSpec, insider_name
from creator_sync.pipeline.sources import column

# attribute (custom.{platform}_{name}) -> (Insider type, what it is)
ATTRIBUTES = {
    "avg_likes_per_post": ("number", "likes per post published in the engagement window"),
    "avg_comments_per_post": ("number", "comments per post in the window"),
    "avg_views_per_post": ("number", "views per post in the window"),
    "posts_per_week": ("number", "posts in the window / (window days / 7)"),
    "engagement_rate": (
        "number",
        "(likes + comments + shares) per post / that platform's followers, in percent",
    ),
    "last_post_at": ("date", "the newest publication time in the window"),
}
_SUMMED = ("likes", "comments", "shares", "views")  # the keys of platform_attributes.engagement_window


def schema() -> pa.Schema:
    return pa.schema(
        [("uuid", pa.string()), ("platform", pa.string()), ("posts", pa.float64())]
        + [(name, pa.float64()) for name in _SUMMED]
        + [("last_us", pa.int64())]
    )


def partials(
    table: pa.Table, ts: pd.Series, spec: EventSpec, columns: dict[str, str], since: datetime, end: datetime
) -> pa.Table | None:
    """One chunk's per (creator, platform) sums over the items published in [since, end)."""
    platform_col = next((p.column for p in spec.custom if p.type == "platform"), None)
    if platform_col is None or not len(table):
        return None
    ts = ts.reset_index(drop=True)
    inside = np.asarray((ts >= since) & (ts < end), dtype=bool)
    if not inside.any():
        return None
    kept = table.filter(pa.array(inside))
    frame = {"uuid": pc.cast(kept[spec.user], pa.string()), "platform": platform_name(kept[platform_col])}
    frame["posts"] = pa.array(np.ones(len(kept)))
    for name in _SUMMED:
        source = columns.get(name)
        values = pc.cast(kept[source], pa.float64()) if source in kept.column_names else pa.nulls(len(kept))
        frame[name] = pc.fill_null(pc.cast(values, pa.float64()), 0.0)
    frame["last_us"] = pa.array(ts[inside].astype("datetime64[us, UTC]").astype("int64").to_numpy())
    grouped = pa.table(frame).group_by(["uuid", "platform"])
    sums = grouped.aggregate([(n, "sum") for n in ("posts", *_SUMMED)] + [("last_us", "max")])
    renamed = sums.rename_columns([n.removesuffix("_sum").removesuffix("_max") for n in sums.column_names])
    return renamed.drop_null().select(schema().names).cast(schema())


def attributes(parts: pa.Table, followers: pd.DataFrame, window_days: int, full_window: bool) -> pd.DataFrame:
    """A bucket's partial sums -> one row per creator, `{platform}_{attribute}` columns. `followers`: the
    creators frame (its `custom.{platform}_follower_count` columns give the engagement rate)."""
    if not len(parts) or not full_window:
        return pd.DataFrame()
    sums = (
        parts.to_pandas()
        .groupby(["uuid", "platform"], as_index=False)
        .agg({"posts": "sum", **{n: "sum" for n in _SUMMED}, "last_us": "max"})
    )
    out = pd.DataFrame({"uuid": sums["uuid"], "platform": sums["platform"]})
    posts = sums["posts"]
    out["avg_likes_per_post"] = (sums["likes"] / posts).round(2)
    out["avg_comments_per_post"] = (sums["comments"] / posts).round(2)
    out["avg_views_per_post"] = (sums["views"] / posts).round(2)
    out["posts_per_week"] = (posts / (window_days / 7)).round(2)
    per_post = (sums["likes"] + sums["comments"] + sums["shares"]) / posts
    follower = [
        followers.at[u, f"custom.{p}_follower_count"]
        if f"custom.{p}_follower_count" in followers and u in followers.index
        else np.nan
        for u, p in zip(sums["uuid"], sums["platform"], strict=True)
    ]
    follower = pd.Series(follower, dtype="float64").where(lambda f: f > 0)
    out["engagement_rate"] = (per_post / follower * 100).round(4)
    last = pd.to_datetime(sums["last_us"], unit="us", utc=True)
    out["last_post_at"] = last.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    names = [n for n in ATTRIBUTES if n in out]
    wide = out.set_index(["uuid", "platform"])[names].unstack("platform")
    wide.columns = [f"{platform}_{name}" for name, platform in wide.columns]
    return wide.dropna(axis=1, how="all")


def read_in_full(wide: pd.DataFrame, accounts: pd.DataFrame, read: frozenset[str] | None) -> pd.DataFrame:
    """`wide` (uuid index, `{platform}_{attribute}` columns) without the values of a (creator, platform) whose
    contents the run read for only some of the creator's accounts on the platform (`read`: the accounts
    whose contents were read, a targeted run's; None: every account's). A targeted run names the accounts a
    webhook named, and a value over part of a platform's accounts would replace the whole one at Insider.
    Accounts of a known status other than CONNECTED do not count (their contents are not needed)."""
    if read is None or wide.empty or not len(accounts):
        return wide
    status = column(accounts, "status").astype("object")
    names = column(accounts, "work_platform.name").astype("object")
    frame = pd.DataFrame(
        {
            "uuid": column(accounts, "user.id").astype("str"),
            "platform": [insider_name(v) if isinstance(v, str) else None for v in names],
            "unread": ~column(accounts, "id").astype("str").isin(read),
            "open": ((status == "CONNECTED") | status.isna()).to_numpy(),
        }
    )
    partial = frame[frame["unread"] & frame["open"]].dropna(subset=["platform"])
    if partial.empty:
        return wide
    pairs = set(zip(partial["uuid"], partial["platform"], strict=True))
    wide = wide.copy()
    for col in wide.columns:
        name = next((n for n in ATTRIBUTES if col.endswith(f"_{n}")), None)
        if name is None:
            continue
        platform = col[: -len(name) - 1]
        rows = np.asarray([(u, platform) in pairs for u in wide.index], dtype=bool)
        if rows.any():
            wide[col] = wide[col].where(~rows)
    return wide.dropna(axis=1, how="all")


def window_start(end: datetime, window_days: int) -> datetime:
    return end - timedelta(days=window_days)
