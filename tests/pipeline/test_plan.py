"""The incremental sync planner: requests proportional to the change, sweeps that cover the fleet, backfills
that read the directory once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from creator_sync.sync import plan

START = datetime(2026, 3, 2, 10, tzinfo=UTC)
END = START + timedelta(hours=1)


def snapshot(users: int, accounts_per_user: int = 2, income_every: int = 4) -> plan.Snapshot:
    accounts = users * accounts_per_user
    return plan.Snapshot(
        users=users,
        accounts=accounts,
        profiles=accounts,
        income_accounts=[f"acc-{a}" for a in range(0, accounts, income_every)],
        known_users={f"usr-{u}" for u in range(users)},
        contents_per_day=accounts // 10,
    )


def profile_webhooks(users: range) -> list[dict]:
    return [
        {
            "event": "PROFILES.UPDATED",
            "data": {
                "account_id": f"acc-{2 * u + k}",
                "user_id": f"usr-{u}",
                "profile_id": f"prf-{2 * u + k}",
            },
        }
        for u in users
        for k in range(2)
    ]


class Sizes:
    """A fake list server: a list read of `resource` returns its records page by page; get/search = 1."""

    def __init__(self, **sizes: int) -> None:
        self.sizes = sizes
        self.offsets: dict[str, list[int]] = {}

    def __call__(self, read: plan.Read, offset: int, limit: int) -> int:
        if read.kind != "list":
            return max(1, len(read.ids))
        if read.params:
            return 1  # per-user / per-account / dated lists: one short page
        self.offsets.setdefault(read.resource, []).append(offset)
        return max(0, min(limit, self.sizes[read.resource] - offset))


def test_changes_from_payloads_groups_ids_by_what_is_re_read():
    payloads = [
        *profile_webhooks(range(2)),
        {"event": "CONTENTS.ADDED", "data": {"account_id": "acc-1", "items": ["c1", "c2"]}},
        {"event": "TRANSACTIONS.ADDED", "data": {"account_id": "acc-1", "items": ["t1"]}},
        {"event": "ACCOUNTS.CONNECTED", "data": {"account_id": "acc-9", "user_id": "usr-new"}},
        {"event": "ACCOUNTS.CONNECTED", "data": {"account_id": "acc-8", "user_id": "usr-0"}},
        {"event": "PROFILES_AUDIENCE.UPDATED", "data": {"account_id": "acc-1"}},
    ]
    changes = plan.changes_from_payloads(payloads, known_users={"usr-0", "usr-1"})
    assert changes.profiles == {"usr-0": {"prf-0", "prf-1"}, "usr-1": {"prf-2", "prf-3"}}
    assert changes.contents == {"c1", "c2"} and changes.transactions == {"t1"}
    assert changes.accounts == {"acc-9", "acc-8"} and changes.new_users == {"usr-new"}


def test_hourly_requests_grow_with_the_change_not_the_fleet():
    def requests(users: int, changed: int) -> int:
        snap = snapshot(users)
        changes = plan.changes_from_payloads(profile_webhooks(range(changed)), snap.known_users)
        reads = plan.plan_hourly(snap, changes, START, END, hour=5)
        return plan.run_plan(reads, Sizes(users=users, accounts=2 * users, profiles=2 * users))["total"]

    small, big = requests(10_000, 100), requests(100_000, 1_000)  # 1% changed at both sizes
    full_big = plan.run_plan(
        plan.plan_full(snapshot(100_000), START, END),
        Sizes(users=100_000, accounts=200_000, profiles=200_000),
    )["total"]
    assert big < full_big / 10
    # ten times the fleet and the change -> about ten times the requests; a changed user costs one request
    assert 8 * small <= big <= 12 * small
    with_change = requests(100_000, 1_000)
    without = requests(100_000, 0)
    assert with_change - without == 1_000


def test_changed_profiles_cost_one_request_per_user():
    snap = snapshot(1_000)
    changes = plan.changes_from_payloads(profile_webhooks(range(3)), snap.known_users)
    changes.profiles["usr-9"] = {"prf-18"}
    reads = [r for r in plan.plan_hourly(snap, changes, START, END, 0) if r.purpose == "changed"]
    assert [(r.kind, r.params.get("user_id") or r.record_id) for r in reads] == [
        ("list", "usr-0"),
        ("list", "usr-1"),
        ("list", "usr-2"),
        ("get", "prf-18"),
    ]


def test_too_many_changed_ids_read_the_whole_list_instead():
    snap = snapshot(1_000)  # 2,000 profiles: 21 pages
    changes = plan.changes_from_payloads(profile_webhooks(range(50)), snap.known_users)
    reads = [r for r in plan.plan_hourly(snap, changes, START, END, 0) if r.resource == "profiles"]
    assert len(reads) == 1 and reads[0].kind == "list" and reads[0].max_pages is None and not reads[0].params


@pytest.mark.parametrize("hours", [1, 5, 24])
@pytest.mark.parametrize("size", [0, 99, 100, 2_350, 10_000])
def test_directory_sweep_reads_every_page_once_within_its_period(size, hours):
    fake = Sizes(users=size, accounts=size, profiles=size)
    snap = plan.Snapshot(users=size, accounts=size, profiles=size, income_accounts=[])
    for hour in range(1000, 1000 + hours):  # any starting hour
        plan.run_plan(plan.plan_hourly(snap, plan.Changes(), START, END, hour, hours), fake)
    for resource in plan.DIRECTORY:
        offsets = fake.offsets[resource]
        assert sorted(offsets) == list(range(0, plan.pages(size) * 100, 100)), resource


def test_directory_sweep_reaches_records_added_after_the_snapshot():
    fake = Sizes(users=1_000 + 250, accounts=0, profiles=0)
    snap = plan.Snapshot(users=1_000, accounts=0, profiles=0, income_accounts=[])
    for hour in range(24):
        plan.run_plan(
            [r for r in plan.plan_hourly(snap, plan.Changes(), START, END, hour) if r.resource == "users"],
            fake,
        )
    assert max(fake.offsets["users"]) == 1_200  # the page holding the 1,201st..1,250th users


def test_income_sweep_covers_every_income_account_within_its_period():
    snap = snapshot(5_000)
    seen: list[str] = []
    for hour in range(plan.INCOME_SWEEP_HOURS):
        reads = plan.plan_hourly(snap, plan.Changes(), START, END, hour)
        sweep = [r for r in reads if r.resource == "social_transactions" and r.purpose == "sweep"]
        seen += [r.params["account_id"] for r in sweep]
        assert all(r.params["from_date"] == "2026-02-23" for r in sweep)  # a week back: since the last sweep
    assert sorted(seen) == sorted(snap.income_accounts)


def test_webhook_items_are_searched_in_batches_of_at_most_100():
    changes = plan.Changes(transactions={f"t{i}" for i in range(250)}, contents={f"c{i}" for i in range(100)})
    reads = plan.plan_hourly(snapshot(100), changes, START, END, 0)
    searches = [r for r in reads if r.kind == "search"]
    assert sorted((r.resource, len(r.ids)) for r in searches) == [
        ("contents", 100),
        ("social_transactions", 50),
        ("social_transactions", 100),
        ("social_transactions", 100),
    ]
    assert {i for r in searches if r.resource == "social_transactions" for i in r.ids} == changes.transactions


def test_backfill_reads_the_directory_once_and_each_dated_list_once_over_the_range():
    snap = snapshot(1_000)
    midnight = START.replace(hour=0)
    reads = plan.plan_backfill(snap, midnight - timedelta(days=30), midnight)
    lists = [(r.resource, r.params.get("from_date"), r.params.get("to_date")) for r in reads]
    for resource in plan.DIRECTORY:
        assert lists.count((resource, None, None)) == 1
    assert lists.count(("contents", "2026-01-31", "2026-03-01")) == 1
    income = [r for r in reads if r.resource == "social_transactions"]
    assert len(income) == len(snap.income_accounts)
    assert {(r.params["from_date"], r.params["to_date"]) for r in income} == {("2026-01-31", "2026-03-01")}
    from_snapshot = plan.plan_backfill(snap, midnight - timedelta(days=30), midnight, use_snapshot=True)
    assert not [r for r in from_snapshot if r.resource in plan.DIRECTORY]


def test_run_plan_pages_until_a_short_page_or_max_pages():
    reads = [
        plan.Read("list", "users", "full"),
        plan.Read("list", "accounts", "sweep", offset=200, max_pages=2),
        plan.Read("search", "contents", "changed", ids=("a", "b")),
    ]
    counts = plan.run_plan(reads, Sizes(users=250, accounts=10_000, profiles=0))
    assert counts == {"total": 6, "users": 3, "accounts": 2, "contents": 1}


def test_sweep_periods_must_be_positive():
    with pytest.raises(ValueError, match="at least 1 hour"):
        plan.plan_hourly(snapshot(10), plan.Changes(), START, END, 0, directory_sweep_hours=0)


def test_snapshot_from_a_directory_read_keeps_the_income_synced_accounts():
    from creator_sync.sync.incremental import snapshot_from

    accounts = [
        {"id": "b", "data": {"income": {"status": "SYNCED"}}},
        {"id": "a", "data": {"income": {"status": "PARTIAL_SYNCED"}}},
        {"id": "c", "data": {"income": {"status": "NOT_SUPPORTED"}}},
        {"id": "d", "data": None},
        {"id": "e"},
    ]
    snap = snapshot_from([{"id": "u1"}, {"id": "u2"}], accounts)
    assert list(snap.income_accounts) == ["a", "b"]
    assert (snap.users, snap.accounts, snap.profiles) == (2, 5, 5)
    assert "u1" in snap.known_users and "u3" not in snap.known_users


def test_payout_webhooks_are_searched_and_other_income_events_left_to_the_sweep():
    payloads = [
        {"event": "PAYOUTS.ADDED", "data": {"account_id": "a1", "user_id": "u1", "items": ["p1", "p2"]}},
        {"event": "PAYOUTS.UPDATED", "data": {"account_id": "a1", "user_id": "u1", "items": ["p2", "p3"]}},
        {"event": "BALANCES.ADDED", "data": {"account_id": "a1", "user_id": "u1", "items": ["b1"]}},
    ]
    changes = plan.changes_from_payloads(payloads, known_users=set())
    assert changes.payouts == {"p1", "p2", "p3"} and not changes.transactions
    reads = plan.plan_hourly(snapshot(100), changes, START, END, 0)
    (search,) = [r for r in reads if r.resource == "social_payouts" and r.kind == "search"]
    assert search.ids == ("p1", "p2", "p3")


def test_payouts_are_swept_with_the_transactions_of_the_same_accounts_never_all_in_one_hour():
    snap = snapshot(5_000)
    seen: list[str] = []
    for hour in range(plan.INCOME_SWEEP_HOURS):
        reads = plan.plan_hourly(snap, plan.Changes(), START, END, hour)
        sweep = {r.resource: r for r in reads if r.purpose == "sweep" and r.resource in plan.INCOME_LISTS}
        payouts = [r for r in reads if r.resource == "social_payouts"]
        transactions = [r for r in reads if r.resource == "social_transactions" and r.purpose == "sweep"]
        assert [r.params for r in payouts] == [r.params for r in transactions]
        assert len(payouts) <= -(-len(snap.income_accounts) // plan.INCOME_SWEEP_HOURS)
        seen += [r.params["account_id"] for r in payouts]
        assert not sweep or sweep["social_payouts"].params["from_date"] == "2026-02-23"
    assert sorted(seen) == sorted(snap.income_accounts)


def test_a_full_run_reads_each_income_accounts_payouts_over_the_interval():
    snap = snapshot(1_000)
    reads = plan.plan_full(snap, START, END)
    payouts = [r for r in reads if r.resource == "social_payouts"]
    assert [r.params["account_id"] for r in payouts] == list(snap.income_accounts)
    assert {(r.params["from_date"], r.params["to_date"]) for r in payouts} == {("2026-03-02", "2026-03-02")}
