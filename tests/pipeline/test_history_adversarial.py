"""Adversarial review of the history path (creator_sync.sync.history): chosen data and timings against the
exactly-once property where the history windows meet the hourly runs.

The history windows and the hourly run are both run through the real transform, on the same items, read by
a fake InsightIQ whose date filters are whole days (as the API's `from_date`/`to_date`); every item must be
sent by exactly one of them, and where a look-back makes them meet, both must name the item by the same
ledger key (the ledger then drops the second, whichever path sends first)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from creator_sync.http.errors import VendorNotFoundError
from creator_sync.pipeline.keys import event_key
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import HistoryAccount, StateStore
from creator_sync.store.history import (
    ACCOUNT_NOT_FOUND,
    CREATOR_OFFBOARDED,
    KNOWN,
    PENDING,
    REQUESTED,
    SENT,
    SKIPPED,
)
from creator_sync.store.webhooks import CONNECTED, WebhookStore
from creator_sync.sync import history
from creator_sync.sync import insightiq_reads as reads

from .factories import transaction

T = datetime(2026, 12, 6, 10, tzinfo=UTC)  # the takeover hour
HOUR = timedelta(hours=1)
FROM = date(2026, 11, 20)
DATE_FIELD = {
    "contents": "published_at",
    "social_transactions": "transaction_at",
    "social_payouts": "payout_at",
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class FakeInsightIQ:
    """Accounts, users, profiles and item lists; list filters are whole days on the item's own date."""

    vendor = "insightiq"

    def __init__(self, accounts: dict[str, dict], lists: dict[str, list[dict]], profiles=()):
        self.accounts, self.lists, self.profiles = accounts, lists, list(profiles)
        self.users = {a["user"]["id"]: {"id": a["user"]["id"], "name": "n"} for a in accounts.values()}
        self.stats: dict = {"requests": 0}
        self.jobs: list[tuple[str, str, str]] = []

    def get_record(self, resource: str, record_id: str) -> dict:
        table = {"accounts": self.accounts, "users": self.users}[resource]
        if record_id not in table:
            raise VendorNotFoundError(
                "not found", vendor="insightiq", method="GET", path=resource, status=404
            )
        return table[record_id]

    def iter_records(self, resource: str, **params):
        if resource == "profiles":
            return iter([p for p in self.profiles if p["account"]["id"] == params["account_id"]])
        first, last, field = params["from_date"], params["to_date"], DATE_FIELD[resource]
        return iter(
            [
                r
                for r in self.lists.get(resource, [])
                if r["account"]["id"] == params["account_id"] and first <= r[field][:10] <= last
            ]
        )

    def fetch_historic(self, resource: str, account_id: str, from_date) -> dict:
        self.jobs.append((resource, account_id, str(from_date)))
        return {"status": "IN_PROGRESS"}


def _account(account_id: str, user_id: str) -> dict:
    return {
        "id": account_id,
        "user": {"id": user_id},
        "work_platform": {"name": "YouTube"},
        "status": "CONNECTED",
        "data": {"engagement": {"status": "SYNCED"}, "income": {"status": "SYNCED"}},
    }


def _content(cid: str, account_id: str, user_id: str, published: datetime) -> dict:
    return {
        "id": cid,
        "user": {"id": user_id},
        "account": {"id": account_id},
        "work_platform": {"name": "YouTube"},
        "title": f"title {cid}",
        "format": "VIDEO",
        "type": "VIDEO",
        "url": f"https://example.com/{cid}",
        "published_at": _iso(published),
        "engagement": {"like_count": 1, "comment_count": 1, "view_count": 1, "share_count": 0},
    }


def _transaction(tid: str, account_id: str, user_id: str, at: datetime) -> dict:
    """factories.transaction (10 USD) on the account under test."""
    return {**transaction(tid, user_id, _iso(at), amount=10.0), "account": {"id": account_id}}


def _payout(pid: str, account_id: str, user_id: str, at: datetime) -> dict:
    """A PAID payout of 20 USD, on the transaction's shape."""
    base = {
        k: v
        for k, v in _transaction(pid, account_id, user_id, at).items()
        if k not in ("type", "transaction_at")
    }
    return {**base, "amount": 20.0, "status": "PAID", "payout_at": _iso(at)}


def _profile(account_id: str, user_id: str) -> dict:
    return {
        "id": f"p-{account_id}",
        "user": {"id": user_id, "name": "n"},
        "account": {"id": account_id},
        "work_platform": {"name": "YouTube"},
        "updated_at": _iso(T - timedelta(days=30)),
        "emails": [{"email_id": f"{user_id}@example.com", "type": "WORK"}],
        "reputation": {"follower_count": 1, "following_count": 1, "content_count": 1},
    }


# items around the takeover: (id, moment); the whole-second spelling of 09:59:59.6 is 09:59:59Z
BOUNDARY = [
    ("c-day-before", T - timedelta(days=1)),
    ("c-minus-1s", T - timedelta(seconds=1)),
    ("c-minus-0.4s", T - timedelta(milliseconds=400)),
    ("c-minus-1us", T - timedelta(microseconds=1)),
    ("c-at", T),
    ("c-plus-0.4s", T + timedelta(milliseconds=400)),
    ("c-plus-59m", T + timedelta(minutes=59, seconds=59)),
    ("c-window-edge", datetime.combine(FROM, datetime.min.time(), UTC) + timedelta(days=3)),  # a window start
    ("c-from", datetime.combine(FROM, datetime.min.time(), UTC)),
    ("c-before-from", datetime.combine(FROM, datetime.min.time(), UTC) - timedelta(microseconds=1)),
]


def _fleet() -> FakeInsightIQ:
    contents = [_content(cid, "acc-1", "u1", moment) for cid, moment in BOUNDARY]
    transactions = [_transaction(f"t{cid[1:]}", "acc-1", "u1", moment) for cid, moment in BOUNDARY]
    payouts = [_payout(f"p{cid[1:]}", "acc-1", "u1", moment) for cid, moment in BOUNDARY]
    return FakeInsightIQ(
        {"acc-1": _account("acc-1", "u1")},
        {"contents": contents, "social_transactions": transactions, "social_payouts": payouts},
        [_profile("acc-1", "u1")],
    )


def _row(account_id: str, takeover: datetime, status: str = REQUESTED) -> HistoryAccount:
    return HistoryAccount(account_id, "snapshot", takeover + timedelta(minutes=20), takeover, status, T, 0)


def _events(users_path) -> list[tuple[str, dict]]:
    out = []
    for line in Path(users_path).read_text().splitlines():
        if line.strip():
            user = json.loads(line)
            out += [(user["identifiers"]["uuid"], e) for e in user.get("events") or []]
    return out


def _item(event: dict) -> str:
    params = event.get("event_params") or {}
    custom = params.get("custom") or {}
    found = custom.get("content_id") or custom.get("transaction_id") or custom.get("payout_id")
    return str(found or event)


def _ledger_keys(events) -> dict[str, str]:
    """Each event's ledger key, as the sender computes it (creator_sync.pipeline.send), by item id."""
    m = load_mapping()
    return {_item(e): event_key(uuid, e, m.key_params(e.get("event_name"))) for uuid, e in events}


@pytest.fixture
def offboarding_store(monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _history(hook, rows, out: Path, days: int = 3) -> list[tuple[str, dict]]:
    manifest = history.read_due(hook, rows, out_dir=out, from_date=FROM, days=days)
    return [e for w in manifest["windows"] for e in _events(w["users_path"])]


def _hourly(hook, out: Path, start: datetime, events_from: datetime | None = None) -> list[tuple[str, dict]]:
    """The hourly run of [start, start + 1h) over every item InsightIQ holds (its read is not the point)."""
    directory = out / "directory"
    inputs: dict[str, list] = {
        res: [directory / res / f"{res}.parquet"] for res in ("users", "profiles", "accounts")
    }
    inputs["contents"] = [
        Path(reads.write(hook.lists["contents"], out / "h" / "contents", "contents")["path"])
    ]
    txs = hook.lists["social_transactions"]
    inputs["transactions"] = [Path(reads.write(txs, out / "h" / "transactions", "transactions")["path"])]
    pays = hook.lists["social_payouts"]
    inputs["payouts"] = [Path(reads.write(pays, out / "h" / "payouts", "payouts")["path"])]
    result = transform_run(
        inputs, start=start, end=start + timedelta(hours=1), events_from=events_from, out_dir=out / "h" / "t"
    )
    return _events(result.users_path)


def test_items_around_the_takeover_are_sent_by_exactly_one_path(offboarding_store, tmp_path):
    """Every item from from_date on is in exactly one history window or in the hourly run of the takeover
    hour: at T-1us (history), in T's own second before and after it, at T (hourly), at a window edge."""
    hook = _fleet()
    hist = _history(hook, [_row("acc-1", T)], tmp_path / "hist")
    hourly = _hourly(hook, tmp_path / "hist", T)
    h_items = [_item(e) for _, e in hist]
    o_items = [_item(e) for _, e in hourly]
    assert len(h_items) == len(set(h_items)), "an item is in two history windows"
    both = set(h_items) & set(o_items)
    assert not both, f"sent by both paths: {sorted(both)}"
    expected_history = {
        cid for cid, m in BOUNDARY if datetime.combine(FROM, datetime.min.time(), UTC) <= m < T
    }
    expected_history |= {f"{x}{c[1:]}" for c in expected_history for x in "tp"}
    expected_hourly = {cid for cid, m in BOUNDARY if T <= m < T + timedelta(hours=1)}
    expected_hourly |= {f"{x}{c[1:]}" for c in expected_hourly for x in "tp"}
    assert set(h_items) == expected_history
    assert set(o_items) == expected_hourly


# the takeover instant and the second before it, spelled as a source might: an offset, a lowercase z, no zone
# (taken as UTC), fractions; each item is on the takeover's UTC day in the text too
ODD = [
    ("c-odd-offset-at", "2026-12-06T11:00:00+01:00", "hourly"),
    ("c-odd-z-at", "2026-12-06T10:00:00.000z", "hourly"),
    ("c-odd-naive-at", "2026-12-06T10:00:00", "hourly"),
    ("c-odd-offset-before", "2026-12-06T10:59:59.999999+01:00", "history"),
    ("c-odd-naive-before", "2026-12-06T09:59:59.5", "history"),
]


def test_odd_spellings_of_the_takeover_instant_are_cut_once(offboarding_store, tmp_path):
    hook = _fleet()
    hook.lists["contents"] += [
        {**_content(cid, "acc-1", "u1", T), "published_at": text} for cid, text, _ in ODD
    ]
    hist = {_item(e) for _, e in _history(hook, [_row("acc-1", T)], tmp_path / "hist")}
    hourly = {_item(e) for _, e in _hourly(hook, tmp_path / "hist", T)}
    for cid, _, owner in ODD:
        assert (cid in hist, cid in hourly) == (owner == "history", owner == "hourly"), cid


def test_a_lookback_before_the_takeover_names_the_items_by_the_history_keys(offboarding_store, tmp_path):
    """The hourly run's look-back (CREATOR_SYNC_LOOKBACK_HOURS) reaches before the takeover: it sends items
    the history path also sends. Both name each such item by the same ledger key (skip_hook is not part of
    it), so the ledger drops whichever comes second."""
    hook = _fleet()
    hist = _ledger_keys(_history(hook, [_row("acc-1", T)], tmp_path / "hist"))
    hourly = _ledger_keys(_hourly(hook, tmp_path / "hist", T, events_from=T - timedelta(hours=26)))
    overlap = set(hist) & set(hourly)
    near = {"c-minus-1s", "c-minus-0.4s", "c-minus-1us", "c-day-before"}
    assert {f"{x}{c[1:]}" for c in near for x in "ctp"} <= overlap
    assert {item: hist[item] for item in overlap} == {item: hourly[item] for item in overlap}


def test_a_retried_read_names_every_item_by_the_same_keys(offboarding_store, tmp_path):
    """A read (or send) that fails halfway is retried from the first window: the retry's windows hold the same
    events under the same keys, so the ledger drops what the first attempt got acknowledged."""
    hook = _fleet()
    first = _ledger_keys(_history(hook, [_row("acc-1", T)], tmp_path / "a"))
    again = _ledger_keys(_history(hook, [_row("acc-1", T)], tmp_path / "b", days=5))  # other window sizes too
    assert first == again


def test_a_send_that_fails_halfway_is_resent_whole_under_the_same_run_ids(offboarding_store, tmp_path):
    hook = _fleet()
    manifest = history.read_due(hook, [_row("acc-1", T)], out_dir=tmp_path / "h", from_date=FROM, days=3)
    full = [w for w in manifest["windows"] if w["users"]]
    assert len(full) >= 3
    calls: list[tuple[str, bool]] = []

    def dying(options):
        calls.append((options.run_id, options.skip_hook))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return {"send": {"users_sent": 1}}

    with pytest.raises(RuntimeError):
        history.send_windows(manifest, run_id="r1", send=dying)
    first = list(calls)
    calls.clear()
    history.send_windows(
        manifest, run_id="r1", send=lambda o: calls.append((o.run_id, o.skip_hook)) or {"send": {}}
    )
    assert calls[: len(first)] == first and len(calls) == len(full)
    assert all(skip for _, skip in calls)


def test_a_takeover_before_the_from_date_reads_and_sends_nothing(offboarding_store, tmp_path):
    hook = _fleet()
    early = datetime.combine(FROM, datetime.min.time(), UTC) - timedelta(hours=5)
    manifest = history.read_due(hook, [_row("acc-1", early)], out_dir=tmp_path / "h", from_date=FROM, days=3)
    assert manifest["windows"] == []
    assert history.send_windows(manifest, run_id="r", send=lambda o: pytest.fail("sent"))["windows"] == 0


def test_an_offboarded_creator_pending_history_sends_nothing(offboarding_store, tmp_path):
    from creator_sync.store.offboarding import OffboardingState

    OffboardingState(offboarding_store).mark_offboarded("u1", "erasure")
    assert _history(_fleet(), [_row("acc-1", T)], tmp_path / "h") == []


def test_an_offboarded_creator_gets_no_fetch_historic_jobs(offboarding_store):
    from creator_sync.store.offboarding import OffboardingState

    OffboardingState(offboarding_store).mark_offboarded("u1", "erasure")
    hook = _fleet()
    history.discover(offboarding_store, ["old"], T - timedelta(days=1))
    history.discover(offboarding_store, ["old", "acc-1"], T)
    history.request_jobs(hook, offboarding_store, offboarding_store.history_due(10), FROM, T)
    assert hook.jobs == []
    (row,) = offboarding_store.history_accounts(["acc-1"])
    assert (row.status, row.reason) == (SKIPPED, CREATOR_OFFBOARDED)  # not owed forever
    assert offboarding_store.history_due(10) == []


# -- who sets the takeover: the webhook, the snapshot, both, a reconnect ---------------------------------
@pytest.fixture
def state(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _connected(state: StateStore, event_id: str, account_id: str, at: datetime) -> bool:
    return WebhookStore(state.engine).record_delivery(event_id, CONNECTED, account_id, "sha", True, now=at)


def test_a_reconnect_owes_the_past_up_to_its_hour(state):
    """A connect owes the past once; a connect in a later hour (disconnected, then connected again under the
    same id) owes it again up to that hour: what was published meanwhile is listed only after it
    (tests/pipeline/test_history_reconnect.py)."""
    history.discover(state, ["old"], T - timedelta(days=1))  # the baseline
    assert _connected(state, "e1", "acc", T + timedelta(minutes=59, seconds=59))
    assert _connected(state, "e2", "acc", T + timedelta(minutes=59, seconds=59))  # a second delivery
    assert history.discover(state, ["old", "acc"], T + timedelta(hours=1))["new"] == 0
    row = state.history_accounts(["acc"])[0]
    assert (row.status, row.takeover_at, row.source) == (PENDING, T + HOUR, "webhook")
    assert _connected(state, "e3", "acc", T + timedelta(hours=5))  # disconnected, then connected again
    row = state.history_accounts(["acc"])[0]
    assert (row.status, row.takeover_at) == (PENDING, T + 6 * HOUR)
    state.history_requested(["acc"], T + timedelta(hours=6))
    state.history_sent(["acc"], "r1")
    assert _connected(state, "e4", "acc", T + timedelta(days=2))  # a reconnect after the past was sent
    row = state.history_accounts(["acc"])[0]
    assert (row.status, row.takeover_at, row.requested_at) == (PENDING, T + timedelta(days=2) + HOUR, None)
    assert [r.account_id for r in state.history_due(10)] == ["acc"]


def test_the_snapshot_first_then_the_webhook_keeps_the_snapshot_takeover(state):
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "acc"], T + timedelta(minutes=30))
    assert _connected(state, "e1", "acc", T - timedelta(hours=3))  # a late delivery, stamped earlier
    row = state.history_accounts(["acc"])[0]
    assert (row.takeover_at, row.source) == (T + HOUR, "snapshot")


def test_the_baseline_is_taken_once_even_when_the_first_snapshot_is_empty(state):
    """A new deployment: the first discovery finds an empty fleet (no creator yet). The creators who connect
    afterwards are first seen by the path, so their past is owed: none may be taken for the baseline."""
    history.discover(state, [], T - timedelta(hours=2))
    found = history.discover(state, ["first-creator"], T)
    assert found["new"] == 1 and found["baseline"] == 0
    assert [r.status for r in state.history_accounts(["first-creator"])] == [PENDING]


def test_the_baseline_is_taken_once_when_the_first_snapshot_holds_only_webhook_accounts(state):
    """The first creators arrive by webhook before the first discovery; the next one's webhook is lost: the
    snapshot shows it later, and its past is owed too (the baseline was the webhook accounts' snapshot)."""
    assert _connected(state, "e1", "w1", T - timedelta(hours=3))
    history.discover(state, ["w1"], T - timedelta(hours=2))
    found = history.discover(state, ["w1", "no-webhook"], T)
    assert found["new"] == 1 and found["baseline"] == 0
    assert {r.account_id: r.status for r in state.history_accounts()}["no-webhook"] == PENDING


def test_no_snapshot_yet_takes_no_baseline(state):
    """Before creator_sync wrote a snapshot, discovery knows nothing of the fleet: the first snapshot's
    accounts are the baseline, not owed."""
    assert history.discover(state, None, T - timedelta(hours=2)) == {
        "snapshot_accounts": 0,
        "new": 0,
        "baseline": 0,
    }
    assert history.discover(state, ["a", "b"], T)["baseline"] == 2
    assert {r.status for r in state.history_accounts(["a", "b"])} == {KNOWN}


def test_an_account_insightiq_no_longer_has_does_not_block_the_others(state):
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "gone", "ok"], T)
    hook = _fleet()
    hook.accounts["ok"] = _account("ok", "u2")
    for _ in range(2):  # two hourly history runs
        with contextlib.suppress(VendorNotFoundError):
            history.request_jobs(hook, state, state.history_due(1), FROM, T)
    assert [r.status for r in state.history_accounts(["ok"])] == [REQUESTED]
    (gone,) = state.history_accounts(["gone"])
    assert (gone.status, gone.reason) == (SKIPPED, ACCOUNT_NOT_FOUND)


def test_another_insightiq_error_fails_the_request_and_leaves_the_account_owed(state):
    """Only a 404 is an account gone: a server error fails the step (Airflow retries) and the account stays
    pending; what the accounts before it got is recorded."""
    from creator_sync.http.errors import VendorServerError

    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "a-ok", "b-down"], T)
    hook = _fleet()
    hook.accounts["a-ok"] = _account("a-ok", "u2")
    hook.accounts["b-down"] = _account("b-down", "u3")
    real = hook.get_record

    def flaky(resource, record_id):
        if record_id == "b-down":
            raise VendorServerError("down", vendor="insightiq", method="GET", path=resource, status=503)
        return real(resource, record_id)

    hook.get_record = flaky
    with pytest.raises(VendorServerError):
        history.request_jobs(hook, state, state.history_due(10), FROM, T)
    rows = {r.account_id: (r.status, r.reason) for r in state.history_accounts(["a-ok", "b-down"])}
    assert rows == {"a-ok": (REQUESTED, None), "b-down": (PENDING, None)}


def test_an_account_gone_before_its_read_is_skipped_and_the_others_are_read(state, tmp_path):
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "acc-1", "gone"], T)
    state.history_requested(["acc-1", "gone"], T)
    hook = _fleet()
    manifest = history.read_due(hook, state.history_due(10), out_dir=tmp_path / "h", from_date=FROM, days=3)
    assert manifest["accounts"] == ["acc-1"] and manifest["gone"] == ["gone"]
    assert any(w["events"] for w in manifest["windows"])
    assert history.skip_gone(state, manifest) == ["gone"]
    assert [r.account_id for r in state.history_due(10)] == ["acc-1"]
    assert [(r.status, r.reason) for r in state.history_accounts(["gone"])] == [(SKIPPED, ACCOUNT_NOT_FOUND)]


# -- the history send meets an hourly run of the same creator ---------------------------------------
def _sent_items(insider) -> list[str]:
    return [_item(e) for batch in insider.requests for user in batch for e in user.get("events") or []]


def _send_with(state, insider):
    from creator_sync.pipeline.send import send_file

    def send(options):
        report = send_file(
            options.users_path, state=state, hook=insider, run_id=options.run_id, skip_hook=True
        )
        return {"send": report.as_dict()}

    return send


def test_a_creator_an_hourly_run_holds_keeps_the_account_owed_until_its_past_is_sent(
    offboarding_store, tmp_path, monkeypatch
):
    """An hourly run holds the creator's claim (a live lease) for longer than the history send waits
    (CREATOR_SYNC_CLAIM_WAIT_S): the send fails. The account must stay owed (its past did not reach
    Insider); the next history run sends it, each item once."""
    from creator_sync.pipeline.send import ClaimsHeldElsewhere

    from .factories import FakeInsiderHook

    monkeypatch.setenv("CREATOR_SYNC_CLAIM_WAIT_S", "0")

    state = offboarding_store
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "acc-1"], T + timedelta(minutes=20))
    state.history_requested(["acc-1"], T + timedelta(minutes=30))
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    rows = state.history_due(10)
    manifest = history.read_due(hook, rows, out_dir=tmp_path / "h1", from_date=FROM, days=3)
    state.claim("hourly", ["u1"], 600, fence="hourly#1#x")  # the hourly run is sending u1 right now
    with pytest.raises(ClaimsHeldElsewhere):  # the task fails; finish is not reached
        history.send_windows(manifest, run_id="h1", send=_send_with(state, insider))
    assert _sent_items(insider) == []
    assert [r.status for r in state.history_accounts(["acc-1"])] == [REQUESTED]  # still owed

    state.release_claims("hourly", fence="hourly#1#x")  # the hourly run ends; the next history run
    manifest = history.read_due(hook, state.history_due(10), out_dir=tmp_path / "h2", from_date=FROM, days=3)
    totals = history.send_windows(manifest, run_id="h2", send=_send_with(state, insider))
    history.finish(state, manifest, totals, "h2")
    items = _sent_items(insider)
    start = datetime.combine(FROM, datetime.min.time(), UTC)
    takeover = state.history_accounts(["acc-1"])[0].takeover_at  # the hour after discovery's
    owed = [cid for cid, m in BOUNDARY if start <= m < takeover]
    assert sorted(items) == sorted(f"{x}{c[1:]}" for c in owed for x in "ctp")  # each historic item once
    assert set(insider.skip_hooks) == {True}
    assert [r.status for r in state.history_accounts(["acc-1"])] == [SENT]


def test_an_item_published_just_before_a_late_in_the_hour_connect_is_sent_once(state):
    history.discover(state, ["old"], T - timedelta(days=1))
    connect = T + timedelta(minutes=59)  # 10:59, the webhook arrives at once
    assert _connected(state, "e1", "acc", connect)
    takeover = state.history_accounts(["acc"])[0].takeover_at
    published = T + timedelta(minutes=10)  # posted before connecting, listed by InsightIQ's first sync
    listed = connect + timedelta(minutes=5)
    # the hourly run of [10:00, 11:00) reads its interval at 11:00: InsightIQ does not list the item yet;
    # the run of [11:00, 12:00) lists it but cuts its events to its own interval (no look-back)
    hourly = [
        (start, start + HOUR) for start in (T, T + HOUR) if listed <= start + HOUR and start <= published
    ]
    hourly_sends = any(a <= published < b for a, b in hourly)
    history_sends = any(a <= published < b for a, b in history.history_windows(FROM, takeover, 3))
    assert hourly_sends + history_sends == 1


@pytest.mark.parametrize("connect_minute", [0, 1, 30, 59])
@pytest.mark.parametrize("listed_after_min", [1, 5, 70])
def test_the_snapshot_path_leaves_no_item_before_the_connect_to_an_hourly_run_that_read_too_early(
    state, connect_minute, listed_after_min
):
    """Snapshot first: the account connects in the hour of a history run's discovery (the hourly run of the
    hour before read the directory just after the connect). Every item posted before the connect, listed by
    InsightIQ's first sync up to 70 minutes later, is sent by the history path or by an hourly run that reads
    its interval after the item is listed: by at least one (the ledger drops a second send)."""
    history.discover(state, ["old"], T - timedelta(days=1))
    connect = T + timedelta(minutes=connect_minute)
    discovery = connect + timedelta(seconds=30)  # at the earliest: after the snapshot that shows it
    history.discover(state, ["old", "acc"], discovery)
    takeover = state.history_accounts(["acc"])[0].takeover_at
    listed = connect + timedelta(minutes=listed_after_min)
    windows = history.history_windows(FROM, takeover, 3)
    for before in (
        timedelta(microseconds=1),
        timedelta(seconds=30),
        timedelta(minutes=10),
        timedelta(hours=2),
    ):
        published = connect - before
        start = published.replace(minute=0, second=0, microsecond=0)
        hourly_sends = published >= takeover and listed <= start + HOUR  # its interval's run, if it lists it
        history_sends = any(a <= published < b for a, b in windows)
        assert hourly_sends or history_sends, (connect, published)


def test_an_item_with_an_unreadable_date_is_kept_with_its_reason(tmp_path):
    from .factories import END, START, content

    items = [content("c1", "u1", "2024-05-01T10:00:00Z"), content("c2", "u1", "2024-05-01 10:00 UTC")]
    result = transform_run(_undated_inputs(tmp_path, items), start=START, end=END, out_dir=tmp_path / "t")
    sent = [_item(e) for _, e in _events(result.users_path)]
    kept = Path(result.malformed_path).read_text() + Path(result.rejected_path).read_text()
    assert sent == ["c1"]
    assert "c2" in kept


def _undated_inputs(tmp_path, items, transactions=()):
    from .factories import profile, write_resource

    emails = [{"type": "WORK", "email_id": "u1@example.com"}]
    return {
        "users": [write_resource(tmp_path / "users.parquet", [{"id": "u1"}])],
        "profiles": [
            write_resource(
                tmp_path / "profiles.parquet",
                [profile("u1", "a-u1", "Instagram", "2024-04-01T00:00:00Z", emails=emails)],
            )
        ],
        "contents": [write_resource(tmp_path / "contents.parquet", items)],
        "transactions": [write_resource(tmp_path / "transactions.parquet", list(transactions))],
    }


def _letters(result) -> list[dict]:
    return [json.loads(line) for line in Path(result.malformed_path).read_text().splitlines() if line.strip()]


def test_an_unreadable_date_read_twice_in_a_run_is_kept_once(tmp_path):
    """The contents sweep reads the same list beside the run's window: the bad item is one dead letter, with
    its reason, and counted once; it is not counted outside the interval."""
    from creator_sync.pipeline.sources import SWEEP_CONTENTS

    from .factories import END, START, content

    items = [content("c1", "u1", "2024-05-01T10:00:00Z"), content("c2", "u1", "2024-05-01 10:00 UTC")]
    inputs = _undated_inputs(tmp_path, items)
    inputs[SWEEP_CONTENTS] = list(inputs["contents"])
    result = transform_run(
        inputs, start=START, end=END, sweep_from=START - timedelta(days=7), out_dir=tmp_path / "t"
    )
    letters = _letters(result)
    assert [(x["reason"], x["payload"]["id"]) for x in letters] == [("malformed_source_record", "c2")]
    assert "published_at" in letters[0]["detail"]
    assert result.stats.malformed_records == {"contents": 1}
    assert result.stats.rows_outside_interval == 0


def test_an_income_item_with_an_unreadable_date_is_kept_once_by_the_income_step(tmp_path, state):
    """The income step already keeps a transaction without a usable time (invalid_income_item): the event
    step does not keep it again."""
    from creator_sync.pipeline.income import IncomeState

    from .factories import END, START, transaction

    txs = [transaction("t1", "u1", "2024-05-01T10:00:00Z"), transaction("t2", "u1", "not a date")]
    inputs = _undated_inputs(tmp_path, [], txs)
    with_income = transform_run(
        inputs, start=START, end=END, out_dir=tmp_path / "a", income_state=IncomeState(state)
    )
    assert [(x["reason"], x["payload"]["id"]) for x in _letters(with_income)] == [
        ("invalid_income_item", "t2")
    ]
    without = transform_run(inputs, start=START, end=END, out_dir=tmp_path / "b")
    assert [(x["reason"], x["payload"]["id"]) for x in _letters(without)] == [
        ("malformed_source_record", "t2")
    ]


def test_the_history_path_keeps_an_unreadable_date_once_a_run(offboarding_store, tmp_path):
    """Every history window's transform keeps its malformed records; the run keeps each once, and a retried
    send keeps none twice."""
    hook = _fleet()
    bad = {**_content("c-bad", "acc-1", "u1", T), "published_at": "2026-11-21 10:00 UTC"}
    hook.lists["contents"].append(bad)
    manifest = history.read_due(hook, [_row("acc-1", T)], out_dir=tmp_path / "h", from_date=FROM, days=3)
    for _ in range(2):  # the send task and its retry
        assert history.keep_malformed(offboarding_store, manifest, "hist-1") == {"malformed_source_record": 1}
    kept = offboarding_store.dead_letters(reasons=["malformed_source_record"])
    assert [d.payload["id"] for d in kept] == ["c-bad"]
