"""History on first connection: a newly connected account's past contents and income, sent once as events
with `skip_hook: true` (the creator_sync_history DAG).

InsightIQ syncs only a recent window of a newly connected account; older items come through a fetch-historic
job per account and list (`POST .../fetch-historic {"account_id", "from_date"}`, answered 202 IN_PROGRESS,
the items listed later). The path, one step per DAG task:

1. **discover** (`discover`): the accounts of the directory snapshot (which the hourly creator_sync runs
   keep) without an `account_history` row get one, `pending`; the webhook receiver does the same on
   `ACCOUNTS.CONNECTED` (creator_sync.webhooks.app). The first discovery records every account as `known`
   (the baseline: the fleet that was there before the path ran; a backfill sends its past). Each row keeps
   its `takeover_at`: the start of the hour after the one the account was first seen in.
2. **request** (`request_jobs`): for at most `CREATOR_SYNC_HISTORY_MAX_ACCOUNTS_PER_RUN` owed accounts,
   oldest first, one account read and the fetch-historic jobs of its lists (contents when it has contents,
   social transactions and payouts when its platform has income) from `CREATOR_SYNC_HISTORY_FROM_DATE`;
   the row becomes `requested`, or `skipped` with its reason (an offboarded creator's account, one
   InsightIQ answers 404 for); one whose request InsightIQ refuses (a 4xx) stays owed, taken after the
   accounts with fewer failed attempts.
3. **send** (`send_due`): accounts requested at least `CREATOR_SYNC_HISTORY_JOB_WAIT_S` ago are read (the
   account, its owner, its profiles: once) and their lists in date windows of
   `CREATOR_SYNC_HISTORY_WINDOW_DAYS` from the from_date up to `takeover_at` (`history_windows`); each
   window goes through the creator_sync transform (creator_sync.pipeline.transform) and, stripped to
   identifiers and events (the attributes are the hourly runs' to send, and so are the dead letters of
   creators Insider cannot take), through the one exactly-once sender
   (creator_sync.pipeline.upsert: ledger, claims, lost-answer settlement) with `skip_hook: true`. The rows
   become `sent` only after every window was sent (`finish`); a failed attempt, or one that found users held
   by another live run's claim, leaves them `requested` and the retry or the next run sends again, the
   ledger dropping what Insider already acknowledged. The income items a window reads are kept in the state
   store (creator_sync.pipeline.income): the past counts in the lifetime figures the hourly runs send.

**Where the hourly runs take over.** History windows tile [from_date 00:00 UTC, takeover_at) half-open; an
hourly run owns [start, end) of its interval. `takeover_at` is the start of the hour after the one the
account was first seen in (by the webhook receiver or the snapshot, both after the connect), so every item
published before the account was first seen is in a history window, read once InsightIQ lists it (the job
wait), not left to an hourly run that read its interval before InsightIQ's first sync listed the item; an
item stamped exactly `takeover_at` is the hourly run's. The hourly run of the hour the account was first seen
in can read some of its items too (those after its interval start that InsightIQ listed by then): the
history path and the hourly runs overlap there, never leave a gap, and the event ledger, keyed by event
name, key params and time, sends each such event once. So it does where they meet otherwise (the look-back
`CREATOR_SYNC_LOOKBACK_HOURS`, a targeted run).

**Items listed after the read.** InsightIQ says nothing of when a fetch-historic job completes, so a job can
list items after the read of step 3: dated before `takeover_at`, no hourly run's event window holds them, and
the row is `sent`. A creator_sync run that reads them (the targeted run an item-list webhook starts, a sweep,
a full run) keeps the events of the rows before its window (from the from_date on), and the late-history check
(creator_sync.pipeline.late_history, run by creator_sync.sync.steps) puts a `sent` row back to `requested`,
due at once, when such an item is dated before its takeover_at and its event is not in the ledger (items of
creators who left or whom the run rejects do not count: the history read would not send them either). The next
history run reads the account's windows again and the ledger drops what Insider acknowledged, so only the late
items are sent, once, with `skip_hook: true`. Rows still owed, skipped or known are left alone; the run report
counts the accounts reopened (`history_reopened`).

The DAG holds the `insightiq_api` and `insider_upsert` pools like creator_sync, with a lower priority weight:
queued creator_sync tasks get the slots first, and every history run is bounded by the accounts it takes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from creator_sync.store.history import SENT, takeover_hour
from creator_sync.sync import plan

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAG_ID = "creator_sync_history"
# the lists the path sends, with the fetch-historic resource (creator_sync.hooks.insightiq) and the fetch
# file the transform reads them from (creator_sync.pipeline.sources.RESOURCES)
CONTENTS = "contents"
INCOME = {"transactions": "social_transactions", "payouts": "social_payouts"}
NOT_SUPPORTED = "NOT_SUPPORTED"


# -- pure parts: the window arithmetic and the selection -------------------------------------------------
def takeover_at(first_seen: datetime) -> datetime:
    """The moment the hourly runs own an account's events from: the start of the hour after the one it was
    first seen in (creator_sync.store.history.takeover_hour), so no item published before then is left to
    an hourly run that read its interval before InsightIQ listed it."""
    return takeover_hour(first_seen)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def history_windows(from_date: date, takeover: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """Half-open windows [a, b) of at most `days` days from `from_date` 00:00 UTC to `takeover`: no gap, no
    overlap, the last one ending at `takeover` exactly (none when from_date is not before it)."""
    if days < 1:
        raise ValueError(f"history windows need at least one day, got {days}")
    start, end, step = midnight(from_date), takeover.astimezone(UTC), timedelta(days=days)
    out = []
    while start < end:
        out.append((start, min(start + step, end)))
        start += step
    return out


def window_days(window: tuple[datetime, datetime]) -> tuple[str, str]:
    """The days InsightIQ's date filters take for [a, b) (whole days; the transform cuts at a and b)."""
    a, b = window
    return a.date().isoformat(), (b - timedelta(microseconds=1)).date().isoformat()


@dataclass(frozen=True)
class Selection:
    new: list[str]  # first seen now: their past is owed
    baseline: list[str]  # there before the path's first run: recorded as known


def select_new_accounts(current: Iterable[str], recorded: Iterable[str], started: bool) -> Selection:
    """The accounts of the snapshot that have no history row yet. Before the path's first run (`started`
    false) they are all the baseline, none is new."""
    fresh = sorted(set(current) - set(recorded))
    return Selection(new=fresh, baseline=[]) if started else Selection(new=[], baseline=fresh)


def plan_history(
    accounts: Sequence[str], income: Iterable[str], windows: Sequence[tuple[datetime, datetime]]
) -> list[plan.Read]:
    """The InsightIQ requests of sending `accounts`' history (all assumed to have contents; `income`: those
    with an income platform), in the planner's terms for the request simulation (devtools.bench): per
    account one read and the fetch-historic jobs when requesting, then the account, its owner and its
    profiles once, and each list per window (kind `job` = one POST)."""
    income = set(income)
    reads: list[plan.Read] = []
    for account_id in accounts:
        lists = [CONTENTS, *(INCOME.values() if account_id in income else ())]
        reads.append(plan.Read("get", "accounts", "history: request", record_id=account_id))
        reads += [plan.Read("job", name, "history: fetch-historic", record_id=account_id) for name in lists]
        reads.append(plan.Read("get", "accounts", "history: directory", record_id=account_id))
        reads.append(plan.Read("get", "users", "history: directory", record_id=account_id))
        reads.append(plan.Read("list", "profiles", "history: directory", {"account_id": account_id}))
        for window in windows:
            first, last = window_days(window)
            reads.append(
                plan.Read(
                    "list",
                    CONTENTS,
                    "history",
                    {"account_id": account_id, "from_date": first, "to_date": last},
                )
            )
            for name in lists[1:]:
                params = {"account_id": account_id, "from_date": first, "to_date": last}
                reads.append(plan.Read("list", name, "history", params))
    return reads


# -- steps ----------------------------------------------------------------------------------------------
def _status(account: dict[str, Any], product: str) -> str | None:
    node = (account.get("data") or {}).get(product)
    return node.get("status") if isinstance(node, dict) else None


def has_contents(account: dict[str, Any]) -> bool:
    return _status(account, "engagement") != NOT_SUPPORTED


def has_income(account: dict[str, Any]) -> bool:
    status = _status(account, "income")
    return status is not None and status != NOT_SUPPORTED


def snapshot_account_ids() -> list[str] | None:
    """The accounts of the directory snapshot in force (None before creator_sync wrote one: the fleet is not
    known yet, which an empty snapshot, a fleet of no account, is)."""
    from creator_sync.sync.snapshot import SnapshotStore

    store = SnapshotStore()
    meta = store.current()
    if meta is None:
        return None
    table = store.read(meta, "accounts")
    return [str(a) for a in table.column("id").to_pylist() if a] if "id" in table.column_names else []


def discover(state, account_ids: Iterable[str] | None, now: datetime) -> dict[str, int]:
    """Record the accounts without a history row: `pending` (taken over at `now`'s hour), or `known` on the
    path's first run with a snapshot. That run also writes the baseline mark (BASELINE_MARK), so the baseline
    is taken once even when it holds no account (a new deployment's empty fleet, or a fleet the webhook
    receiver already recorded): the accounts seen after it are owed. `account_ids` None (no snapshot yet)
    records nothing."""
    from creator_sync.store.history import BASELINE_MARK, KNOWN, PENDING

    if account_ids is None:
        return {"snapshot_accounts": 0, "new": 0, "baseline": 0}
    account_ids = list(account_ids)
    started = state.history_started()
    selection = select_new_accounts(account_ids, state.history_known(account_ids), started)
    new = state.note_accounts(
        selection.new, source="snapshot", takeover_at=takeover_at(now), status=PENDING, at=now
    )
    base = state.note_accounts(selection.baseline, source="baseline", takeover_at=None, status=KNOWN, at=now)
    if not started:
        state.note_accounts([BASELINE_MARK], source="baseline", takeover_at=None, status=KNOWN, at=now)
    return {"snapshot_accounts": len(account_ids), "new": new, "baseline": base}


def refused_errors() -> tuple[type[Exception], ...]:
    """The errors that refuse one account's request and not the others' (a 400 or another 4xx: e.g. for an
    account disconnected since it was seen); a test switches this guard off."""
    from creator_sync.http.errors import VendorBadRequestError

    return (VendorBadRequestError,)


def request_jobs(hook, state, accounts: Sequence, from_date: date, now: datetime) -> dict[str, int]:
    """The fetch-historic jobs of the `pending` ones of `accounts` (HistoryAccount rows). An account whose
    creator is on the offboarding skip list gets no job, and one InsightIQ answers 404 for (gone: deleted
    or erased there) is left; both are recorded `skipped` with the reason, so they leave the owed rows and
    never hold back the accounts behind them. One whose request InsightIQ refuses (`refused_errors`) stays
    owed with one more attempt (`history_due` takes it after the others) and the others go on. Any other
    error fails the step (the task's retry asks again); what the accounts before it got is recorded first."""
    from creator_sync.http.errors import VendorNotFoundError
    from creator_sync.store import offboarded_ids
    from creator_sync.store.history import ACCOUNT_NOT_FOUND, CREATOR_OFFBOARDED, PENDING

    jobs, done, offboarded, gone, refused = 0, [], [], [], []
    try:
        for row in accounts:
            if row.status != PENDING:
                continue
            try:
                account = hook.get_record("accounts", row.account_id)
                if offboarded_ids([str((account.get("user") or {}).get("id"))], state):
                    offboarded.append(row.account_id)
                    continue
                lists = ([CONTENTS] if has_contents(account) else []) + (
                    list(INCOME.values()) if has_income(account) else []
                )
                for resource in lists:
                    hook.fetch_historic(resource, row.account_id, from_date)
                    jobs += 1
            except VendorNotFoundError:
                log.warning("history: InsightIQ has no account %s (404): skipped", row.account_id)
                gone.append(row.account_id)
                continue
            except refused_errors() as exc:
                status = getattr(exc, "status", None)
                log.warning("history: InsightIQ refused account %s (%s): stays owed", row.account_id, status)
                refused.append(row.account_id)
                continue
            done.append(row.account_id)
    finally:
        state.history_requested(done, now)
        state.history_skipped(offboarded, CREATOR_OFFBOARDED, now)
        state.history_skipped(gone, ACCOUNT_NOT_FOUND, now)
        state.history_failed(refused)
    counts = {"accounts": len(done), "jobs": jobs, "offboarded": len(offboarded), "gone": len(gone)}
    return {**counts, "refused": len(refused)}


def due(accounts: Sequence, now: datetime, wait_s: float) -> list:
    """The `requested` rows whose jobs have had `wait_s` seconds."""
    from creator_sync.store.history import REQUESTED

    return [
        r
        for r in accounts
        if r.status == REQUESTED
        and r.requested_at is not None
        and r.requested_at + timedelta(seconds=wait_s) <= now
    ]


def strip_to_events(src, dst) -> dict[str, int]:
    """users.jsonl -> the same users with identifiers and events only; users without events are left out."""
    users = events = 0
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            if not line.strip():
                continue
            user = json.loads(line)
            if not user.get("events"):
                continue
            kept = {k: user[k] for k in ("identifiers", "events") if k in user}
            fout.write(json.dumps(kept, separators=(",", ":")) + "\n")
            users += 1
            events += len(user["events"])
    return {"users": users, "events": events}


def _read_directory(
    hook, accounts: Sequence, directory, refused: set[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The accounts, their owners and their profiles, read once into `directory`; returns the accounts and
    the ids of those InsightIQ answers 404 for (gone since their jobs were requested). An account whose
    profiles InsightIQ refuses (`refused_errors`) joins `refused`."""
    from creator_sync.http.errors import VendorNotFoundError
    from creator_sync.sync import insightiq_reads as reads

    records, gone = [], []
    for r in accounts:
        try:
            records.append(hook.get_record("accounts", r.account_id))
        except VendorNotFoundError:
            log.warning("history: InsightIQ has no account %s (404): skipped", r.account_id)
            gone.append(r.account_id)
    owners = sorted({a["user"]["id"] for a in records})
    reads.write([hook.get_record("users", u) for u in owners], directory / "users", "users")
    profiles = []
    for a in records:
        try:
            profiles += list(hook.iter_records("profiles", account_id=a["id"]))
        except refused_errors() as exc:
            status = getattr(exc, "status", None)
            log.warning("history: InsightIQ refused profiles of account %s (%s)", a["id"], status)
            refused.add(a["id"])
    reads.write(profiles, directory / "profiles", "profiles")
    reads.write(records, directory / "accounts", "accounts")
    return records, gone


def _lists(hook, resource: str, account_ids: list[str], days: tuple[str, str], refused: set[str]):
    """The records of list `resource` of each account over `days`, one list each; an account whose list
    InsightIQ refuses (`refused_errors`) joins `refused` and is read no further (its history stays owed)."""
    for account_id in account_ids:
        if account_id in refused:
            continue
        try:
            yield from hook.iter_records(resource, from_date=days[0], to_date=days[1], account_id=account_id)
        except refused_errors() as exc:
            status = getattr(exc, "status", None)
            log.warning("history: InsightIQ refused %s of account %s (%s)", resource, account_id, status)
            refused.add(account_id)


def _read_window(
    hook, window, out, directory, contents_ids: list[str], income_ids: list[str], refused: set[str]
) -> dict:
    """One window's lists of the accounts, transformed and stripped to identifiers and events; accounts whose
    lists InsightIQ refuses join `refused`."""
    from pathlib import Path

    from creator_sync.pipeline.income import IncomeState
    from creator_sync.pipeline.sources import RESOURCES
    from creator_sync.pipeline.transform import transform_run
    from creator_sync.store import StateStore, offboarded_ids
    from creator_sync.sync import insightiq_reads as reads

    first, last = window_days(window)
    inputs: dict[str, list] = {res: [] for res in RESOURCES}
    for res in ("users", "profiles", "accounts"):
        inputs[res] = [directory / res / f"{res}.parquet"]
    contents = _lists(hook, CONTENTS, contents_ids, (first, last), refused)
    inputs["contents"] = [Path(reads.write(contents, out / "fetch" / "contents", "contents")["path"])]
    for file, resource in INCOME.items():
        listed = _lists(hook, resource, income_ids, (first, last), refused)
        inputs[file] = [Path(reads.write(listed, out / "fetch" / file, file)["path"])]
    result = transform_run(
        inputs,
        start=window[0],
        end=window[1],
        out_dir=out / "transform",
        offboarded=offboarded_ids,
        income_state=IncomeState(StateStore()),  # the past income counts in the lifetime figures
    )
    users_path = out / "transform" / "history_users.jsonl"
    kept = strip_to_events(result.users_path, users_path)
    return {
        "start": window[0].isoformat(),
        "end": window[1].isoformat(),
        "users_path": str(users_path),
        "malformed_path": str(result.malformed_path),
        **kept,
    }


def read_due(hook, accounts: Sequence, *, out_dir, from_date: date, days: int) -> dict[str, Any]:
    """Read and transform the history of `accounts` (rows due), window by window, into files to send: per
    window `history_users.jsonl` (identifiers and events only). Returns the manifest (also written as
    `manifest.json` in `out_dir`): the windows' files and counts and the accounts they cover, and under
    `gone` those InsightIQ answers 404 for (`skip_gone` records them), under `refused` those a list of which
    InsightIQ refused (`finish` leaves them owed, one more attempt). Accounts first seen in the same hour
    share their windows."""
    from pathlib import Path

    out = Path(out_dir)
    directory = out / "directory"
    refused: set[str] = set()  # accounts a list of which InsightIQ refused: they stay owed (`finish`)
    records, gone = _read_directory(hook, accounts, directory, refused)
    accounts = [r for r in accounts if r.account_id not in set(gone)]
    with_contents = {a["id"] for a in records if has_contents(a)}
    with_income = {a["id"] for a in records if has_income(a)}
    groups: dict[datetime, list[str]] = {}
    for r in accounts:
        groups.setdefault(r.takeover_at, []).append(r.account_id)
    windows: list[dict[str, Any]] = []
    for takeover, members in sorted(groups.items()):
        contents_ids = [a for a in members if a in with_contents]
        income_ids = [a for a in members if a in with_income]
        for k, window in enumerate(history_windows(from_date, takeover, days)):
            name = f"{takeover:%Y%m%dT%H}-w{k:03d}"
            read = _read_window(hook, window, out / name, directory, contents_ids, income_ids, refused)
            windows.append({"name": name, **read})
    out.mkdir(parents=True, exist_ok=True)
    accounts = [r for r in accounts if r.account_id not in refused]
    manifest = {
        "accounts": [r.account_id for r in accounts],
        "refused": sorted(refused),
        # what `finish` compares: a row reopened since this read stays owed (store.history.history_reopen)
        "requested_at": {r.account_id: r.requested_at.isoformat() for r in accounts if r.requested_at},
        "gone": gone,
        "windows": windows,
        "malformed_path": _malformed_once(windows, out / "malformed.jsonl"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _malformed_once(windows: list[dict[str, Any]], path) -> str:
    """The windows' malformed.jsonl (records the transform keeps as dead letters: without their ids, or
    whose time is unreadable) in one file, each letter once (the directory's records are in every
    window's)."""
    seen: set[tuple[str, str]] = set()
    with open(path, "w", encoding="utf-8") as out:
        for window in windows:
            with open(window["malformed_path"], encoding="utf-8") as lines:
                for line in lines:
                    if line.strip() and (key := _letter_key(line)) not in seen:
                        seen.add(key)
                        out.write(line if line.endswith("\n") else line + "\n")
    return str(path)


def _letter_key(line: str) -> tuple[str, str]:
    letter = json.loads(line)
    return letter["user_key"], letter["reason"]


def keep_malformed(state, manifest: dict[str, Any], run_id: str) -> dict[str, int]:
    """Dead-letter the records the history windows' transform could not send (the manifest's
    malformed.jsonl) under the history run's id: idempotent, so a retried send keeps each once. Returns
    letters per reason."""
    from creator_sync.pipeline.send import record_rejections

    path = manifest.get("malformed_path")
    return dict(record_rejections(path, state=state, run_id=run_id)) if path else {}


def skip_gone(state, manifest: dict[str, Any]) -> list[str]:
    """Record the accounts the read found gone at InsightIQ (404) as skipped (ACCOUNT_NOT_FOUND)."""
    from creator_sync.store.history import ACCOUNT_NOT_FOUND

    gone = list(manifest.get("gone") or [])
    state.history_skipped(gone, ACCOUNT_NOT_FOUND)
    return gone


def send_windows(manifest: dict[str, Any], *, run_id: str, send) -> dict[str, Any]:
    """Send every window of a manifest with `skip_hook: true` through `send(options)` (the exactly-once
    sender, creator_sync.pipeline.upsert, for the task attempt); each window is recorded under its own run id
    `<run_id>__<window>`. Returns the totals."""
    from creator_sync.pipeline.upsert import SendOptions

    keys = ("users_sent", "events_sent", "events_already_acknowledged", "requests", "claimed_elsewhere")
    totals = {"windows": len(manifest["windows"]), **dict.fromkeys(keys, 0)}
    for window in manifest["windows"]:
        if not window["users"]:
            continue
        options = SendOptions(
            users_path=window["users_path"], run_id=f"{run_id}__{window['name']}", skip_hook=True
        )
        sent = send(options)["send"]
        for key in keys:
            totals[key] += int(sent.get(key, 0))
    return totals


def finish(state, manifest: dict[str, Any], totals: dict[str, Any], run_id: str) -> list[str]:
    """Record the manifest's accounts as sent, unless a window left users to another live run's claim
    (`claimed_elsewhere`: an hourly run was sending the same creators). Those users' past did not reach
    Insider, and the other run sends only its own interval, so the accounts stay owed (one more attempt
    counted) and the next history run sends them again, the ledger dropping what this one got acknowledged.
    An account reopened while this run read and sent (a late item an hourly run read meanwhile) stays owed
    too (`read_marks`). Returns the accounts recorded as sent."""
    accounts = list(manifest["accounts"])
    state.history_failed(manifest.get("refused") or [])  # read in part: owed, one more attempt
    if totals.get("claimed_elsewhere"):
        log.warning(
            "history: %d user(s) were held by another live run's claim; the %d account(s) of this run stay "
            "owed and the next run sends their past",
            totals["claimed_elsewhere"],
            len(accounts),
        )
        state.history_failed(accounts)
        return []
    state.history_sent(accounts, run_id, requested=read_marks(manifest))
    return [r.account_id for r in state.history_accounts(accounts) if r.status == SENT]


def read_marks(manifest: dict[str, Any]) -> dict[str, datetime] | None:
    """The `requested_at` of each account as the read saw it: ``history_sent`` closes only the rows not
    reopened since (a test switches this guard off); None for a manifest without them."""
    marks = manifest.get("requested_at")
    if marks is None:
        return None
    return {account: datetime.fromisoformat(at) for account, at in marks.items()}
