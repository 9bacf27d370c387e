"""Request-count simulation of the incremental sync (no server, no sleeping; seconds even at 1M creators).

A fleet model with the sandbox's proportions (1-3 accounts per creator, ~27% of accounts income-synced,
contents and transactions spread over 400 days) answers list pages, gets and searches like InsightIQ would
(a `CountingFake`). The change generator marks a fraction of the creators changed in an hour and produces
the webhooks InsightIQ would send for them (PROFILES.UPDATED per account, CONTENTS.ADDED and
TRANSACTIONS.ADDED with their new item ids, PAYOUTS.ADDED for a share of the paid accounts, ACCOUNTS.CONNECTED
for new creators). The planner
(creator_sync.sync.plan) turns those webhooks into reads, and `run_plan` executes them against the fake:
the figures are requests actually made, so a planner that reads more shows up here.

`targeted_contents` counts the contents lists of the targeted runs the same webhooks start (one per named
account, over the engagement window; `insightiq_targeted_contents_extra_requests_<size>`: what that window
costs beyond a read of the run's own interval). Targeted runs are separate Airflow runs, not part of the
hourly run's figure.

`python -m devtools.bench.requests_sim` prints the figures as JSON. The hourly figures are with history on:
the hour's creator_sync run plus one creator_sync_history run of the hour's new connections (`history_run`,
assumption at HISTORY_* below); `_without_history` is the creator_sync run alone. The
`_per_account_contents` figures are the same hourly run when InsightIQ requires `account_id` on the contents
list (creator_sync.sync.contents_read): the interval's list is replaced by the weekly per-account contents
sweep.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from creator_sync.sync import plan

HOUR = timedelta(hours=1)
# the sandbox data set's proportions (devtools/sandbox/data.py)
ACCOUNTS_PER_CREATOR_P = (0.5, 0.35, 0.15)  # 1, 2 or 3 accounts
INCOME_SHARE = 0.27  # income-synced accounts (YouTube/Twitch/Patreon, 85% synced)
ENGAGEMENT_SHARE = 0.97  # accounts with contents (all but commerce)
CONTENTS_PER_ACCOUNT_DAY = 27.5 / 400
TRANSACTIONS_PER_ACCOUNT_DAY = 12.5 / 400
PAYOUTS_PER_ACCOUNT_DAY = 3.5 / 400  # the sandbox's 1-6 social payouts per income account over 400 days
PAYOUT_SHARE = 0.1  # changed income accounts that are also paid out in the hour (PAYOUTS.ADDED)
NEW_CREATORS_PER_HOUR = 0.0001  # share of the fleet that connects a new account in an hour
# History on first connection (creator_sync_history): every newly connected account's past is read once.
# Assumption: NEW_CREATORS_PER_HOUR connections an hour, each ONE new account (100/h at 1M creators: 2,400 a
# day, the fleet's size again in about 14 months: a fast-growing fleet, on the high side), its past read
# from HISTORY_FROM_DAYS days back in windows of HISTORY_WINDOW_DAYS (the settings' defaults: 2020-01-01
# to the simulated hour, 366-day windows), bounded by HISTORY_MAX_ACCOUNTS per run.
HISTORY_FROM_DAYS = (date(2026, 3, 2) - date(2020, 1, 1)).days
HISTORY_WINDOW_DAYS = 366
HISTORY_MAX_ACCOUNTS = 100


class Fleet:
    """A deterministic fleet: creators 0..n-1, their accounts, which accounts are income-synced."""

    def __init__(self, creators: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n = creators
        per = rng.choice([1, 2, 3], size=creators, p=ACCOUNTS_PER_CREATOR_P)
        self.first_account = np.zeros(creators + 1, dtype=np.int64)
        np.cumsum(per, out=self.first_account[1:])
        self.accounts = int(self.first_account[-1])
        self.income = rng.random(self.accounts) < INCOME_SHARE
        self.engagement = rng.random(self.accounts) < ENGAGEMENT_SHARE

    def accounts_of(self, creator: int) -> range:
        return range(int(self.first_account[creator]), int(self.first_account[creator + 1]))

    def snapshot(self) -> plan.Snapshot:
        income = [f"acc-{a}" for a in np.flatnonzero(self.income)]
        contents_per_day = round(int(self.engagement.sum()) * CONTENTS_PER_ACCOUNT_DAY)
        return plan.Snapshot(
            users=self.n,
            accounts=self.accounts,
            profiles=self.accounts,
            income_accounts=income,
            known_users=_KnownUsers(self.n),
            contents_per_day=contents_per_day,
            contents_accounts=_AccountIds(np.flatnonzero(self.engagement)),
        )


@dataclass(frozen=True)
class _AccountIds:
    """`acc-<i>` for the given account indices, in order (a sequence without millions of strings)."""

    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [f"acc-{i}" for i in self.indices[key].tolist()]
        return f"acc-{int(self.indices[key])}"


@dataclass(frozen=True)
class _KnownUsers:
    """`usr-<i>` for i < n (a container without a million strings)."""

    n: int

    def __contains__(self, user_id: object) -> bool:
        text = str(user_id)
        return text.startswith("usr-") and text[4:].isdigit() and int(text[4:]) < self.n


class CountingFake:
    """Answers each request with the number of records InsightIQ would return, and counts requests."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.requests = 0
        engaged = int(fleet.engagement.sum())
        self.sizes = {"users": fleet.n, "accounts": fleet.accounts, "profiles": fleet.accounts}
        self.contents_per_day = engaged * CONTENTS_PER_ACCOUNT_DAY

    def _list_size(self, read: plan.Read) -> int:
        p = read.params
        if read.resource in self.sizes:
            if "account_id" in p:  # an account's profiles
                return 1
            return 3 if "user_id" in p else self.sizes[read.resource]
        days = (date.fromisoformat(p["to_date"]) - date.fromisoformat(p["from_date"])).days + 1
        if read.resource == "contents" and "account_id" in p:
            a = int(str(p["account_id"]).removeprefix("acc-"))
            return math.floor(CONTENTS_PER_ACCOUNT_DAY * days + (a * 0.7548776662) % 1)
        if read.resource == "contents":
            return round(self.contents_per_day * days)
        if read.resource == "social_transactions":
            # an account's transactions over the days, with a per-account fraction so the mean holds
            a = int(str(p["account_id"]).removeprefix("acc-"))
            return math.floor(TRANSACTIONS_PER_ACCOUNT_DAY * days + (a * 0.6180339887) % 1)
        if read.resource == "social_payouts":
            a = int(str(p["account_id"]).removeprefix("acc-"))
            return math.floor(PAYOUTS_PER_ACCOUNT_DAY * days + (a * 0.4142135624) % 1)
        raise ValueError(f"the fake has no list {read.resource!r}")

    def __call__(self, read: plan.Read, offset: int, limit: int) -> int:
        self.requests += 1
        if read.kind in ("get", "job"):  # a record by id; a fetch-historic POST
            return 1
        if read.kind == "search":
            if not 0 < len(read.ids) <= plan.SEARCH_MAX_IDS:
                raise ValueError(f"search with {len(read.ids)} ids (InsightIQ takes 1..100)")
            return len(read.ids)
        return max(0, min(limit, self._list_size(read) - offset))


def hourly_webhooks(fleet: Fleet, fraction: float, hour: int, seed: int = 11) -> list[dict]:
    """The webhooks of one hour in which `fraction` of the creators changed: every account of a changed
    creator gets PROFILES.UPDATED, a new content (engagement accounts) and a new transaction (income
    accounts); new creators connect an account. Item events carry <= 100 ids each."""
    rng = np.random.default_rng([seed, hour])
    k = min(fleet.n, max(1, round(fraction * fleet.n)))
    changed = rng.choice(fleet.n, size=k, replace=False)
    out: list[dict] = []
    new_item = 0
    for c in changed.tolist():
        user_id = f"usr-{c}"
        for a in fleet.accounts_of(c):
            base = {"account_id": f"acc-{a}", "user_id": user_id}
            out.append({"event": "PROFILES.UPDATED", "data": {**base, "profile_id": f"prf-{a}"}})
            if fleet.engagement[a]:
                new_item += 1
                out.append({"event": "CONTENTS.ADDED", "data": {**base, "items": [f"cnt-{hour}-{new_item}"]}})
            if fleet.income[a]:
                new_item += 1
                out.append(
                    {"event": "TRANSACTIONS.ADDED", "data": {**base, "items": [f"txn-{hour}-{new_item}"]}}
                )
                if rng.random() < PAYOUT_SHARE:
                    new_item += 1
                    out.append(
                        {"event": "PAYOUTS.ADDED", "data": {**base, "items": [f"pay-{hour}-{new_item}"]}}
                    )
    for i in range(max(1, round(NEW_CREATORS_PER_HOUR * fleet.n))):
        data = {"account_id": f"acc-new-{hour}-{i}", "user_id": f"usr-new-{hour}-{i}"}
        out.append({"event": "ACCOUNTS.CONNECTED", "data": data})
        out.append({"event": "PROFILES.ADDED", "data": {**data, "profile_id": f"prf-new-{hour}-{i}"}})
    return out


START = datetime(2026, 3, 2, 10, tzinfo=UTC)  # an hour that does not cross midnight


def hourly_run(
    fleet: Fleet,
    fraction: float,
    hour: int = 0,
    snapshot: plan.Snapshot | None = None,
    contents_per_account: bool = False,
) -> dict:
    snapshot = snapshot or fleet.snapshot()
    changes = plan.changes_from_payloads(hourly_webhooks(fleet, fraction, hour), snapshot.known_users)
    per_account = {"contents_per_account": True} if contents_per_account else {}
    reads = plan.plan_hourly(snapshot, changes, START, START + HOUR, hour, **per_account)
    fake = CountingFake(fleet)
    counts = plan.run_plan(reads, fake)
    assert counts["total"] == fake.requests
    return {"requests": counts["total"], "by_resource": counts, "planned": plan.estimate(reads)}


def full_run(fleet: Fleet, snapshot: plan.Snapshot | None = None) -> dict:
    snapshot = snapshot or fleet.snapshot()
    counts = plan.run_plan(plan.plan_full(snapshot, START, START + HOUR), CountingFake(fleet))
    return {"requests": counts["total"], "by_resource": counts}


def backfill_run(fleet: Fleet, days: int, snapshot: plan.Snapshot | None = None) -> dict:
    snapshot = snapshot or fleet.snapshot()
    end = START.replace(hour=0)
    reads = plan.plan_backfill(snapshot, end - timedelta(days=days), end)
    counts = plan.run_plan(reads, CountingFake(fleet))
    return {"requests": counts["total"], "by_resource": counts}


def targeted_contents(fleet: Fleet, fraction: float, hour: int = 0, window_days: int | None = None) -> dict:
    """The contents reads of the targeted runs the hour's webhooks start (creator_sync.sync.targeted_fetch:
    each named account's contents list): over the engagement window (`window`, what a targeted run reads so
    that CONTENTS.UPDATED refreshes the engagement attributes) and over the run's own interval (`interval`,
    a read of the event window only), executed against the fake like the planner's reads. Accounts new in
    the hour have no contents yet: one request each under either window (counted in both)."""
    from creator_sync import settings

    days = window_days or settings.default("engagement_window_days")
    named = {
        p["data"]["account_id"] for p in hourly_webhooks(fleet, fraction, hour) if p["data"].get("account_id")
    }
    known = sorted(a for a in named if a.removeprefix("acc-").isdigit())
    new = len(named) - len(known)
    end = START + HOUR

    def requests(first: datetime) -> int:
        from_date, to_date = plan.day_range(first, end)
        reads = [
            plan.Read(
                "list",
                "contents",
                "targeted",
                params={"account_id": a, "from_date": from_date, "to_date": to_date},
            )
            for a in known
        ]
        return plan.run_plan(reads, CountingFake(fleet))["total"] + new

    window, interval = requests(end - timedelta(days=days)), requests(START)
    return {"accounts": len(named), "window": window, "interval": interval, "extra": window - interval}


def history_run(fleet: Fleet, accounts: int | None = None, seed: int = 13) -> dict:
    """One creator_sync_history run (creator_sync.sync.history.plan_history, executed against the fake):
    `accounts` newly connected accounts (default: the hour's new connections, at most HISTORY_MAX_ACCOUNTS),
    drawn from the fleet so their income share and list sizes are the fleet's, each read from
    HISTORY_FROM_DAYS back to the hour."""
    from creator_sync.sync import history

    if accounts is None:
        accounts = min(HISTORY_MAX_ACCOUNTS, max(1, round(NEW_CREATORS_PER_HOUR * fleet.n)))
    rng = np.random.default_rng(seed)
    picked = sorted(
        int(a) for a in rng.choice(fleet.accounts, size=min(accounts, fleet.accounts), replace=False)
    )
    ids = [f"acc-{a}" for a in picked]
    income = [f"acc-{a}" for a in picked if fleet.income[a]]
    windows = history.history_windows(
        (START - timedelta(days=HISTORY_FROM_DAYS)).date(), START, HISTORY_WINDOW_DAYS
    )
    reads = history.plan_history(ids, income, windows)
    fake = CountingFake(fleet)
    counts = plan.run_plan(reads, fake)
    assert counts["total"] == fake.requests
    return {"requests": counts["total"], "accounts": len(ids), "windows": len(windows), "by_resource": counts}


SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def simulate(changed_fraction: float = 0.01, backfill_days: int = 30) -> dict:
    """The bench keys: requests of one incremental hourly run per fleet size, and the 30-day backfill of
    10k creators over one full sync of them."""
    out: dict = {"requests_sim_changed_fraction": changed_fraction}
    for label, n in SIZES.items():
        fleet = Fleet(n)
        snapshot = fleet.snapshot()
        run = hourly_run(fleet, changed_fraction, snapshot=snapshot)
        # history on: the hour's creator_sync run plus the creator_sync_history run of its new connections
        hist = history_run(fleet)
        out[f"insightiq_requests_history_per_hour_{label}"] = hist["requests"]
        out[f"insightiq_requests_history_max_per_run_{label}"] = history_run(fleet, HISTORY_MAX_ACCOUNTS)[
            "requests"
        ]
        out[f"insightiq_requests_per_hourly_run_{label}"] = run["requests"] + hist["requests"]
        out[f"insightiq_requests_per_hourly_run_{label}_without_history"] = run["requests"]
        out[f"insightiq_requests_hourly_by_resource_{label}"] = {
            **run["by_resource"],
            "history": hist["requests"],
        }
        per_account = hourly_run(fleet, changed_fraction, snapshot=snapshot, contents_per_account=True)
        out[f"insightiq_requests_per_hourly_run_{label}_per_account_contents"] = (
            per_account["requests"] + hist["requests"]
        )
        out[f"insightiq_requests_per_full_run_{label}"] = full_run(fleet, snapshot)["requests"]
        targeted = targeted_contents(fleet, changed_fraction)
        out[f"insightiq_targeted_contents_requests_{label}"] = targeted["window"]
        out[f"insightiq_targeted_contents_extra_requests_{label}"] = targeted["extra"]
        if label == "10k":
            full = out["insightiq_requests_per_full_run_10k"]
            backfill = backfill_run(fleet, backfill_days, snapshot)["requests"]
            # the planner's figure; the real fetch code's is devtools/bench/backfill.py's (no _sim)
            out[f"backfill_{backfill_days}d_requests_10k_sim"] = backfill
            out[f"backfill_{backfill_days}d_requests_ratio_sim"] = backfill / full
    out["insightiq_hourly_budget_share_1m"] = out["insightiq_requests_per_hourly_run_1m"] / 36_000
    return out


if __name__ == "__main__":
    print(json.dumps(simulate(), indent=2))
