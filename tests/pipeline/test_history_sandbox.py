"""History on first connection, end to end against the sandboxes: the hourly sync has run; an account
connects at InsightIQ (its past hidden until fetch-historic jobs run); the receiver records it as owed; the
creator_sync_history steps run twice more than needed and the hourly run again. At the Insider sandbox every
historic item from the from_date up to the takeover arrived exactly once with `skip_hook: true`, and nothing
else changed. The guard: with the history record and the ledger bypassed, the same runs store duplicates.

The DAG file's task callables are called in order (pools, retries and timeouts are tests/dags'); the hourly
run is creator_sync's task bodies (tests/pipeline/test_incremental_fetch.py)."""

from __future__ import annotations

import functools
import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.income import base_name
from creator_sync.store import StateStore
from creator_sync.store.webhooks import WebhookStore
from creator_sync.sync import history
from creator_sync.sync.snapshot import SnapshotStore

from .factories import SANDBOX_NOW
from .test_incremental_fetch import scheduled, sync

pytestmark = [pytest.mark.slow]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# which items arrive, and how often, is checked, not the 10/s limit
SANDBOX_RATE = 200

REPO = Path(__file__).resolve().parents[2]
DAY = 86_400
FROM_DAYS = 200  # the from_date: this many days before the data set's NOW
HIDDEN_DAYS = 100  # the sandbox hides what is older than this many days before NOW
_RUNS = itertools.count(1)
EVENT_IDS = {
    "content_published": "content_id",
    "income_received": "transaction_id",
    "payout_received": "payout_id",
}
LISTS = {
    "content_published": ("/v1/social/contents", "published_at"),
    "income_received": ("/v1/social/income/transactions", "transaction_at"),
    "payout_received": ("/v1/social/income/payouts", "payout_at"),
}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


NOW = _epoch(SANDBOX_NOW)
FROM_DATE = datetime.fromtimestamp(NOW - FROM_DAYS * DAY, UTC).date()


@pytest.fixture
def world(sandbox_env, shared_rate_budget, local_sync_store, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_FROM_DATE", FROM_DATE.isoformat())
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_WINDOW_DAYS", "60")
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_JOB_WAIT_S", "2")
    days = (time.time() - NOW) / DAY + HIDDEN_DAYS
    sandbox_env.configure("insightiq", {"history_default_days": days, "historic_job_seconds": 1.0})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert sync(scheduled(hour - timedelta(hours=1)))["sent"]["users_sent"] > 0
    yield sandbox_env
    sandbox_env.reset("insightiq")
    sandbox_env.configure("insightiq", {"history_default_days": 30, "historic_job_seconds": 5})


def income_account(sb) -> dict:
    """A valid creator's account with contents, transactions and PAID payouts."""
    invalid = {
        r["user_id"] for r in httpx.get(f"{sb.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    }
    store = SnapshotStore()
    accounts = store.read(store.current(), "accounts").to_pylist()
    hook = InsightIQHook()
    for account in accounts:
        if account["user.id"] in invalid:
            continue
        if not history.has_income(hook.get_record("accounts", account["id"])):
            continue
        payouts = list(hook.iter_records("social_payouts", account_id=account["id"]))
        if any(p.get("status") == "PAID" for p in payouts):
            return {"id": account["id"], "user_id": account["user.id"]}
    pytest.skip("no income account with a PAID payout in the sandbox fleet")


def _get(iq: httpx.Client, path: str, params: dict) -> dict:
    """One list page; the test's own reads share the sandbox's rate window with the pipeline's, so a 429
    (seen on a loaded machine: the page was an error body) is waited out as its Retry-After says."""
    for _ in range(30):
        r = iq.get(path, params=params)
        if r.status_code != 429:
            return r.raise_for_status().json()
        time.sleep(float(r.headers.get("Retry-After", 1)))
    raise AssertionError(f"{path}: still 429 after 30 tries")


def listed(sb, account_id: str) -> dict[str, list[dict]]:
    """Everything InsightIQ lists for the account now, per event name."""
    out = {}
    with httpx.Client(base_url=sb.insightiq_url, auth=("sandbox-client-id", "sandbox-client-secret")) as iq:
        for event, (path, _) in LISTS.items():
            rows, offset = [], 0
            while True:
                page = _get(iq, path, {"account_id": account_id, "limit": 100, "offset": offset})
                rows += page["data"]
                if len(page["data"]) < 100:
                    break
                offset += 100
            out[event] = rows
    return out


def connect(sb, account_id: str) -> datetime:
    """The account connects at InsightIQ and the receiver records the ACCOUNTS.CONNECTED delivery."""
    answer = httpx.post(f"{sb.insightiq_url}/_sandbox/connect", json={"account_id": account_id}).json()
    store = WebhookStore(StateStore().engine)
    assert store.record_delivery(answer["event_id"], "ACCOUNTS.CONNECTED", account_id, "0" * 64, True)
    return datetime.now(UTC)


@functools.cache
def history_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "creator_sync_history.py"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[history.DAG_ID]


def history_run() -> dict:
    """One creator_sync_history run: the DAG file's task callables in order, with the context they use."""
    dag, run_id = history_dag(), f"scheduled__history-{next(_RUNS)}"

    def context(task_id: str) -> dict:
        return {"run_id": run_id, "ti": SimpleNamespace(task_id=task_id, map_index=-1, try_number=1)}

    found = dag.get_task("discover").python_callable()
    requested = dag.get_task("request").python_callable(found, **context("request"))
    manifest = dag.get_task("read").python_callable(requested, **context("read"))
    sent = dag.get_task("send").python_callable(manifest, **context("send"))
    report = dag.get_task("report").python_callable(sent, **context("report"))
    assert report["text"].startswith("creator_sync_history:")
    return {
        "found": found,
        "requested": requested["requested"],
        "ready": len(manifest["accounts"]),
        "users_sent": sent.get("users_sent", 0),
        "events_sent": sent.get("events_sent", 0),
    }


def stored(sb) -> dict[str, dict]:
    return {u["identifiers"]["uuid"]: u for u in sb.insider_users()}


def historic_ids(before: dict[str, list[dict]], takeover: datetime) -> Counter:
    """(event name, item id) of every item the history owes: from the from_date up to the takeover (payouts:
    PAID only, the mapping's `where`)."""
    start = datetime(FROM_DATE.year, FROM_DATE.month, FROM_DATE.day, tzinfo=UTC).timestamp()
    out = Counter()
    for event, rows in before.items():
        for row in rows:
            if event == "payout_received" and row.get("status") != "PAID":
                continue
            if start <= _epoch(row[LISTS[event][1]]) < takeover.timestamp():
                out[(event, row["id"])] += 1
    return out


def events_of(user: dict) -> Counter:
    return Counter(
        (e["event_name"], (e["params"].get("custom") or e["params"]).get(EVENT_IDS[e["event_name"]]))
        for e in user.get("events", [])
        if e["event_name"] in EVENT_IDS
    )


def without_income(attributes: dict) -> dict:
    custom = {k: v for k, v in attributes.get("custom", {}).items() if not base_name(k)}
    return {**attributes, "custom": custom}


def income_of(listed_now: dict[str, list[dict]], takeover: datetime) -> dict:
    """The income attributes of the historic items (COMPLETED transactions, PAID payouts), computed here:
    every one is older than 30 days at the hourly run's end (the data set ends at its anchor)."""
    start = datetime(FROM_DATE.year, FROM_DATE.month, FROM_DATE.day, tzinfo=UTC).timestamp()

    def owed(event: str) -> list[dict]:
        return [r for r in listed_now[event] if start <= _epoch(r[LISTS[event][1]]) < takeover.timestamp()]

    out: dict = {}
    for row in owed("income_received"):
        if row.get("status") in (None, "COMPLETED"):
            key = f"earnings_lifetime_{row['currency'].lower()}"
            out[key] = out.get(key, 0) + round(row["amount"] * 1e6)
            out[f"earnings_30d_{row['currency'].lower()}"] = 0
    out = {k: round(v / 1e6, 6) for k, v in out.items()}
    paid = [r for r in owed("payout_received") if r.get("status") == "PAID"]
    if paid:
        newest = max(paid, key=lambda r: (_epoch(r["payout_at"]), r["id"]))
        out["last_payout_at"] = datetime.fromtimestamp(int(_epoch(newest["payout_at"])), UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        out["last_payout_amount"] = newest["amount"]
        out["last_payout_currency"] = newest["currency"].upper()
    return out


def run_history_path(sb, account: dict) -> tuple[dict, dict, list[dict]]:
    everything = listed(sb, account["id"])  # before the connection hides the past
    before = stored(sb)
    first_seen = connect(sb, account["id"])
    assert listed(sb, account["id"])["content_published"] != everything["content_published"]  # hidden now
    runs = [history_run()]
    time.sleep(2.5)  # the job wait (the sandbox's jobs take 1 s)
    runs += [history_run(), history_run()]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sync(scheduled(hour - timedelta(hours=1)))  # the hourly run again
    return everything, before, runs, first_seen


def test_a_new_accounts_history_arrives_once_with_skip_hook(world):
    account = income_account(world)
    everything, before, runs, first_seen = run_history_path(world, account)
    assert runs[0]["requested"]["accounts"] == 1 and runs[0]["requested"]["jobs"] == 3
    assert runs[0]["ready"] == 0  # the jobs had not had their wait
    assert runs[1]["ready"] == 1 and runs[1]["events_sent"] > 0
    assert runs[2]["ready"] == 0 and runs[2]["events_sent"] == 0  # sent once: not taken again

    after = stored(world)
    user = after[account["user_id"]]
    want = historic_ids(everything, history.takeover_at(first_seen))
    assert want and {e for e, _ in want} == set(EVENT_IDS)  # contents, income and payouts all owed
    got = events_of(user)
    assert got == want  # every historic item exactly once, nothing else for this creator
    historic = [e for e in user["events"] if e["event_name"] in EVENT_IDS]
    assert all(e["skip_hook"] is True for e in historic)
    assert world.stats("insider")["duplicate_events"] == 0
    # nothing else changed: the other creators as before, this creator's attributes as before but the income
    # figures, which count the past income the history path read (the hourly runs read none of it)
    assert {k: v for k, v in after.items() if k != account["user_id"]} == {
        k: v for k, v in before.items() if k != account["user_id"]
    }
    assert without_income(user["attributes"]) == without_income(before[account["user_id"]]["attributes"])
    figures = {k: v for k, v in user["attributes"]["custom"].items() if base_name(k)}
    assert figures == income_of(everything, history.takeover_at(first_seen))
    rows = {r.account_id: r.status for r in StateStore().history_accounts()}
    assert rows[account["id"]] == "sent"
    assert set(rows.values()) == {"known", "sent"}


def test_without_the_history_record_and_the_ledger_the_check_finds_duplicates(world, monkeypatch):
    """The guard switched off: the account is never recorded as sent and the ledger acknowledges nothing, so
    the later history runs send the same past again and the Insider sandbox stores it twice."""
    monkeypatch.setattr(StateStore, "history_sent", lambda self, ids, run_id, at=None, requested=None: None)
    monkeypatch.setattr(StateStore, "acknowledged_by", lambda self, keys: {})
    monkeypatch.setattr(StateStore, "acknowledged_of", lambda self, pairs: {})  # the sender's read
    account = income_account(world)
    everything, _, runs, first_seen = run_history_path(world, account)
    assert runs[1]["events_sent"] > 0 and runs[2]["events_sent"] > 0
    got = events_of(stored(world)[account["user_id"]])
    want = historic_ids(everything, history.takeover_at(first_seen))
    assert got != want and max(got.values()) >= 2
    assert world.stats("insider")["duplicate_events"] > 0
