"""What to clear at Insider: the per-platform attributes of platforms a creator has no connected account on,
and the custom attributes over all platforms marked `clear: true` (connected_platforms, the totals) of a
creator with no connected account at all. The income attributes of a last payout that is gone join the same
clears.jsonl line (creator_sync.pipeline.income.cleared), so they spend the same Delete User Attribute
requests and the same rate budget.

A platform has lapsed for a creator when the creator has accounts on it (the run's accounts rows: the whole
directory after the snapshot merge, creator_sync.sync.incremental_fetch) and every one of them has a known
status other than CONNECTED (NOT_CONNECTED, SESSION_EXPIRED). An account without a status is not taken as
lapsed: nothing is cleared on a guess. For each lapsed (creator, platform), every attribute the mapping
clears (`Mapping.cleared`: per-platform attributes with `clear` on, and the contents-based ones) is

- left out of the creator's upsert (the run does not set it: a profile of a disconnected account stays in
  the directory, and its counts would otherwise be sent again), and
- listed for the Delete User Attribute API (`custom.whole`), in clears.jsonl.

So a clear never races an upsert of the same attribute: the run clears only what it does not set. The rule
is a level, not an edge: every run clears what has lapsed, so a clear that failed or was never sent (a run
that died after its transform) is sent again by the next run; deleting an attribute Insider does not hold is
harmless (the docs describe no error for it). Cost: one request per 1,000 such creators per run, in the
upsert's shared budget (creator_sync.pipeline.clear).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from creator_sync.pipeline.mapping import insider_name
from creator_sync.pipeline.sources import column

CONNECTED = "CONNECTED"
STATUS = "status"  # the accounts column the rule reads (creator_sync.pipeline.attributes reads it)


def lapsed_platforms(accounts: pd.DataFrame) -> pd.DataFrame:
    """(uuid, platform) pairs, Insider-named, whose accounts all have a known status other than CONNECTED."""
    if not len(accounts):
        return pd.DataFrame({"uuid": pd.Series(dtype="str"), "platform": pd.Series(dtype="str")})
    status = column(accounts, STATUS).astype("object")
    codes, distinct = pd.factorize(column(accounts, "work_platform.name").astype("object"))
    named = [insider_name(v) if isinstance(v, str) else None for v in distinct] + [None]
    platform = pd.Series(np.asarray(named, dtype=object)[codes], index=accounts.index)  # -1: missing
    rows = pd.DataFrame(
        {
            "uuid": column(accounts, "user.id").astype("str"),
            "platform": platform,
            "open": (status == CONNECTED) | status.isna(),  # connected, or unknown: not lapsed
        }
    ).dropna(subset=["platform"])
    rows = rows[rows["platform"] != ""]
    still = rows.groupby(["uuid", "platform"])["open"].any()
    return still[~still].reset_index()[["uuid", "platform"]]


def lapsed_creators(accounts: pd.DataFrame) -> pd.Index:
    """The creators (uuid) whose accounts all have a known status other than CONNECTED: no platform left."""
    if not len(accounts):
        return pd.Index([], dtype="str")
    status = column(accounts, STATUS).astype("object")
    rows = pd.DataFrame(
        {"uuid": column(accounts, "user.id").astype("str"), "open": (status == CONNECTED) | status.isna()}
    )
    still = rows.groupby("uuid")["open"].any()
    return still.index[~still.to_numpy()]


def _clear_whole(
    creators: pd.DataFrame, accounts: pd.DataFrame, whole: dict[str, str], per_user: dict[str, list[str]]
) -> pd.DataFrame:
    """The custom attributes over all platforms of creators without a connected account (`whole`: column
    -> clear_as): `delete` leaves the value out and lists the name for Delete User Attribute; `empty_list`
    sets it to [] (the upsert sends the whole, empty list with not_append)."""
    gone = lapsed_creators(accounts)
    rows = creators.index.isin(gone)
    if not whole or not rows.any():
        return creators
    creators = creators.copy()
    for col, how in whole.items():
        if how == "empty_list":
            values = creators[col] if col in creators.columns else pd.Series(None, index=creators.index)
            creators[col] = values.astype("object").where(~rows, "[]")
            continue
        if col in creators.columns:
            creators[col] = creators[col].where(~rows)
        for uuid in creators.index[rows]:
            per_user.setdefault(uuid, []).append(col.removeprefix("custom."))
    return creators


def split(
    creators: pd.DataFrame,
    accounts: pd.DataFrame,
    names: Iterable[str],
    whole: dict[str, str] | None = None,
    also: dict[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """`creators` without the values of the attributes to clear, and per creator (uuid index, in the
    creators' order) the sorted attribute names to clear; creators with nothing to clear are not in it.
    `names`: the per-platform attributes cleared for a lapsed platform; `whole` (column -> clear_as): the
    custom attributes over all platforms cleared for a creator with no connected account at all; `also`
    (uuid -> names): other attributes to clear, which the creators' frame does not set (a last payout that
    is gone, creator_sync.pipeline.income.cleared)."""
    names = tuple(names)
    per_user: dict[str, list[str]] = {u: list(n) for u, n in (also or {}).items() if n}
    creators = _clear_whole(creators, accounts, whole or {}, per_user)
    lapsed = lapsed_platforms(accounts)
    lapsed = lapsed[lapsed["uuid"].isin(creators.index)]
    if not names or lapsed.empty:
        return creators, _per_user(creators, per_user)
    creators = creators.copy()
    for platform, uuids in lapsed.groupby("platform")["uuid"]:
        rows = creators.index.isin(uuids.to_numpy())
        for name in names:
            col = f"custom.{platform}_{name}"
            if col in creators.columns:
                creators[col] = creators[col].where(~rows)
    per_platform = {p: [f"{p}_{n}" for n in names] for p in lapsed["platform"].unique()}
    for uuid, platform in zip(lapsed["uuid"], lapsed["platform"], strict=True):
        per_user.setdefault(uuid, []).extend(per_platform[platform])
    return creators, _per_user(creators, per_user)


def _per_user(creators: pd.DataFrame, per_user: dict[str, list[str]]) -> pd.Series:
    order = [u for u in creators.index if u in per_user]
    return pd.Series([sorted(per_user[u]) for u in order], index=order, dtype="object")


def clear_line(uuid: str, attributes: list[str]) -> str:
    """One users[] element of a Delete User Attribute request (custom attributes, removed whole)."""
    return json.dumps({"identifiers": {"uuid": uuid}, "custom": {"whole": list(attributes)}}) + "\n"
