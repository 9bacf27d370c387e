"""Issue #20: an item of a newly connected account's past that InsightIQ lists only after the history path
read the account (a fetch-historic job slower than CREATOR_SYNC_HISTORY_JOB_WAIT_S) is sent once, with
`skip_hook: true`, by the history path it reopens (creator_sync.pipeline.late_history).

The runs are the real transform and sender on a fake InsightIQ and Insider (tests/pipeline/factories.py, the
adversarial review's fleet): the history path sends the account's past without the late item; a later
hourly run reads it (a CONTENTS.ADDED webhook names it: a search read) and drops it as before its window;
the late-history check reopens the account; the next history run sends the late item and nothing else. The
control: with the check off the late item is never sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.late_history import early_rows
from creator_sync.pipeline.transform import transform_run
from creator_sync.store import StateStore
from creator_sync.store.history import REQUESTED, SENT, SKIPPED
from creator_sync.sync import history
from creator_sync.sync import insightiq_reads as reads

from .factories import FakeInsiderHook
from .test_history_adversarial import FROM, HOUR, T, _content, _fleet, _send_with, _sent_items

WAIT = timedelta(minutes=10)  # the job wait


@pytest.fixture
def state(monkeypatch, tmp_path):
    return late_state(monkeypatch, tmp_path)


def late_state(monkeypatch, tmp_path) -> StateStore:
    """A SQLite state store and the settings of these runs (data directory, history from date, job wait)."""
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_FROM_DATE", FROM.isoformat())
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_JOB_WAIT_S", str(WAIT.total_seconds()))
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _history_run(state, hook, insider, out: Path, now: datetime, run_id: str) -> list[str]:
    """One creator_sync_history run's read, send and finish (the request step asks for no job: the
    reopened rows are `requested`); returns the accounts it read."""
    rows = history.due(state.history_due(10), now, WAIT.total_seconds())
    if not rows:
        return []
    manifest = history.read_due(hook, rows, out_dir=out, from_date=FROM, days=3)
    totals = history.send_windows(manifest, run_id=run_id, send=_send_with(state, insider))
    history.finish(state, manifest, totals, run_id)
    return manifest["accounts"]


def _hourly_read(state, hook, items: list[dict], out: Path, start: datetime) -> int:
    """A creator_sync run of [start, start + 1h) whose search read holds `items` (the contents a webhook
    named) and the account's directory, transformed as creator_sync.sync.steps.transform_step does: the
    early events to early_events.parquet and the late-history check when CREATOR_SYNC_HISTORY_REOPEN_LATE is
    on. Returns the run report's `history_reopened` (from the stats file the report reads)."""
    from creator_sync import settings as config
    from creator_sync.pipeline.report import build_summary
    from creator_sync.pipeline.send import SendReport
    from creator_sync.pipeline.transform import load_stats
    from creator_sync.sync.steps import _reopen_late

    directory = out / "directory"
    history._read_directory(hook, [history_row(state)], directory, set())
    inputs: dict[str, list] = {r: [directory / r / f"{r}.parquet"] for r in ("users", "profiles", "accounts")}
    inputs["contents"] = [Path(reads.write(items, out / "fetch" / "contents", "contents")["path"])]
    late = config.current().history_reopen_late
    with early_rows(out / "t", late) as early:
        result = transform_run(inputs, start=start, end=start + HOUR, out_dir=out / "t", early=early)
    assert result.stats.events_written == 0  # the items are before the run's window: no event of theirs
    assert result.stats.rows_early == (
        len([i for i in items if i["published_at"] >= FROM.isoformat()]) * late
    )
    if late:
        _reopen_late(result, out / "t", now=start + HOUR)  # the run's end: the test's clock
    summary = build_summary("r", load_stats(result.stats_path), SendReport())
    assert ("history_reopened" in summary.render()) == bool(summary.history_reopened)
    return summary.history_reopened


def history_row(state):
    return state.history_accounts(["acc-1"])[0]


def _connect(state) -> datetime:
    """acc-1 connects at T - 40 min (takeover T); its jobs are requested at once."""
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "acc-1"], T - timedelta(minutes=40))
    state.history_requested(["acc-1"], T - timedelta(minutes=39))
    return history_row(state).takeover_at


def test_an_item_listed_after_the_history_read_is_sent_once_with_skip_hook(state, tmp_path):
    takeover = _connect(state)
    assert takeover == T
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    late = _content("c-late", "acc-1", "u1", T - timedelta(days=2, hours=3))  # before the takeover
    # the history run reads after the job wait; the slow job has not listed c-late yet
    assert _history_run(state, hook, insider, tmp_path / "h1", T, "h1") == ["acc-1"]
    first = _sent_items(insider)
    assert "c-late" not in first and "c-minus-1s" in first
    assert history_row(state).status == SENT

    hook.lists["contents"].append(late)  # the job lists it; CONTENTS.ADDED names it
    later = T + 5 * HOUR
    assert _history_run(state, hook, insider, tmp_path / "h-none", later, "h-none") == []  # nothing owed
    assert _hourly_read(state, hook, [late], tmp_path / "r1", later) == 1
    assert history_row(state).status == REQUESTED
    # a second run reading it before the history run reopens nothing more
    assert _hourly_read(state, hook, [late], tmp_path / "r2", later + HOUR) == 0

    sent_before = len(insider.requests)
    assert _history_run(state, hook, insider, tmp_path / "h2", later + HOUR, "h2") == ["acc-1"]
    second = [i for batch in insider.requests[sent_before:] for user in batch for i in _items(user)]
    assert second == ["c-late"]  # the ledger dropped everything already acknowledged
    assert set(insider.skip_hooks) == {True}
    assert history_row(state).status == SENT
    assert sorted(_sent_items(insider)) == sorted([*first, "c-late"])  # each item once

    # the item read again (the day's list, a look-back): the ledger holds it, nothing reopens
    assert _hourly_read(state, hook, [late], tmp_path / "r3", later + 2 * HOUR) == 0
    assert history_row(state).status == SENT


def test_without_the_check_the_late_item_is_never_sent(state, tmp_path, monkeypatch):
    """The control: the same runs with the late-history check off (CREATOR_SYNC_HISTORY_REOPEN_LATE false)
    leave c-late unsent."""
    monkeypatch.setenv("CREATOR_SYNC_HISTORY_REOPEN_LATE", "false")
    _connect(state)
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    late = _content("c-late", "acc-1", "u1", T - timedelta(days=2, hours=3))
    _history_run(state, hook, insider, tmp_path / "h1", T, "h1")
    hook.lists["contents"].append(late)
    later = T + 5 * HOUR
    assert _hourly_read(state, hook, [late], tmp_path / "r1", later) == 0
    assert not (tmp_path / "r1" / "t" / "early_events.parquet").exists()
    for k in range(3):
        _history_run(state, hook, insider, tmp_path / f"h{k + 2}", later + k * HOUR, f"h{k + 2}")
    assert "c-late" not in _sent_items(insider)
    assert history_row(state).status == SENT


def test_items_the_history_path_does_not_send_reopen_nothing(state, tmp_path):
    """Before the from_date (no history window holds it), at or after the takeover (the hourly runs'), an
    account whose history is skipped or still owed: no reopen."""
    _connect(state)
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    _history_run(state, hook, insider, tmp_path / "h1", T, "h1")
    from_midnight = datetime.combine(FROM, datetime.min.time(), UTC)
    outside = [
        _content("c-old", "acc-1", "u1", from_midnight - timedelta(seconds=1)),
        _content("c-at-takeover", "acc-1", "u1", T),
    ]
    assert _hourly_read(state, hook, outside, tmp_path / "r1", T + 5 * HOUR) == 0
    late = [_content("c-late", "acc-1", "u1", T - timedelta(days=1))]
    state.history_reopen(["acc-1"], T)  # owed already
    assert _hourly_read(state, hook, late, tmp_path / "r2", T + 5 * HOUR) == 0
    state.history_skipped(["acc-1"], "account_not_found")
    assert _hourly_read(state, hook, late, tmp_path / "r3", T + 6 * HOUR) == 0
    assert history_row(state).status == SKIPPED


def test_an_item_of_a_creator_insider_cannot_take_reopens_nothing(state, tmp_path):
    """u1 has no email (no usable identifier): the history path keeps it as a dead letter and its events
    never reach the ledger. Its late item, rejected with it by the run that reads it, reopens nothing (else
    every run that lists it would make the history path read the account's past again)."""
    _connect(state)
    hook, insider = _fleet(), FakeInsiderHook(per_batch=50)
    hook.profiles = [{**p, "emails": []} for p in hook.profiles]
    _history_run(state, hook, insider, tmp_path / "h1", T, "h1")
    assert _sent_items(insider) == [] and history_row(state).status == SENT
    late = [_content("c-late", "acc-1", "u1", T - timedelta(days=1))]
    assert _hourly_read(state, hook, late, tmp_path / "r1", T + 5 * HOUR) == 0
    assert history_row(state).status == SENT


def _items(user: dict) -> list[str]:
    out = []
    for e in user.get("events") or []:
        custom = (e.get("event_params") or {}).get("custom") or {}
        out.append(str(custom.get("content_id") or custom.get("transaction_id") or custom.get("payout_id")))
    return out


class _State:
    """The state store's part the check uses: one account's history row and the ledger."""

    def __init__(self, status: str, takeover: datetime, held: set[str]):
        self.status, self.takeover, self.held, self.reopened = status, takeover, held, []

    def history_sent_takeovers(self, ids, statuses=(SENT,)):
        return {"acc-1": self.takeover} if self.status in statuses and "acc-1" in ids else {}

    def acknowledged(self, keys):
        return set(keys) & self.held

    def history_reopen(self, ids, due_from):
        if self.status != SENT:
            return 0
        self.status, self.reopened = REQUESTED, [*self.reopened, *ids]
        return len(ids)


def _early_file(path: Path, moments: list[datetime]) -> dict[str, str]:
    """early_events.parquet with one content_published event of acc-1 per moment; returns item -> key."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from creator_sync.pipeline.keys import event_key
    from creator_sync.pipeline.late_history import EARLY_SCHEMA

    rows, keys = [], {}
    for k, moment in enumerate(moments):
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {"event_name": "content_published", "timestamp": stamp}
        event["event_params"] = {"custom": {"content_id": f"c{k}", "account_id": "acc-1"}}
        keys[f"c{k}"] = event_key("u1", event, ("content_id",))
        rows.append(("u1", "acc-1", moment, "content_published", json.dumps(event)))
    table = pa.table(list(zip(*rows, strict=True)) if rows else [[]] * 5, schema=EARLY_SCHEMA)
    pq.write_table(table, path)
    return keys


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offsets=st.lists(st.integers(-3 * 86_400, 2 * 3600), max_size=6),
    held=st.lists(st.booleans(), min_size=6, max_size=6),
    status=st.sampled_from([SENT, REQUESTED, SKIPPED, "pending", "known"]),
)
def test_the_check_reopens_exactly_when_an_unsent_item_of_the_history_windows_is_read(
    tmp_path, offsets, held, status
):
    """Items at `offsets` seconds from the takeover (the job wait and the read time only decide whether a
    run reads them; the check depends on the item time, the row's status and the ledger), the ledger holding
    some: the account reopens iff its row is sent and some item in [from_date, takeover) is not held."""
    from creator_sync.pipeline.late_history import reopen_late_history
    from creator_sync.pipeline.mapping import load_mapping

    since = T - timedelta(days=2)  # the from_date's midnight: EarlyRows keeps nothing before it
    moments = [T + timedelta(seconds=s) for s in offsets if T + timedelta(seconds=s) >= since]
    keys = _early_file(tmp_path / "early.parquet", moments)
    ledger = {keys[f"c{k}"] for k in range(len(moments)) if held[k]}
    fake = _State(status, T, ledger)
    count = reopen_late_history(tmp_path / "early.parquet", fake, mapping=load_mapping(), due_from=T)
    expected = status == SENT and any(m < T and not held[k] for k, m in enumerate(moments))
    assert count == (1 if expected else 0)
    assert fake.reopened == (["acc-1"] if expected else [])
