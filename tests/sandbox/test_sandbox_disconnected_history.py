"""The history path's request and read steps (creator_sync.sync.history) against the InsightIQ sandbox under
each reading of a disconnected account's data (``disconnected_data``, devtools/sandbox/readings.py): one of
two owed accounts is disconnected, the other is not.

- ``refused``: the disconnected account's fetch-historic job and its lists (its profiles, read for the
  read's directory, too) are 400s; it stays owed with one more attempt, the other account is requested and
  sent; after it reconnects, its past is sent and nothing is sent twice. The control: with the guard
  switched off (``refused_errors`` empty) the request step fails at the refused account.
- ``hidden``: nothing is refused; the read of the disconnected account finds none of its items, no crash,
  the other account's past is sent once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sandbox_samples import IQ_AUTH

from creator_sync.http.errors import VendorBadRequestError
from creator_sync.store import StateStore
from creator_sync.store.history import PENDING, REQUESTED, SENT
from creator_sync.sync import history

pytestmark = pytest.mark.slow

T = datetime(2026, 1, 15, 11, tzinfo=UTC)  # an hour before the sandbox's --now (sandbox_samples.NOW)
FROM = date(2026, 1, 1)


@pytest.fixture
def state(monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def iq(sandbox_env):
    with httpx.Client(base_url=sandbox_env.insightiq_url, auth=IQ_AUTH, timeout=30) as client:
        yield client
    sandbox_env.configure("insightiq", {"disconnected_data": "listed"})
    sandbox_env.reset("insightiq")


def _two_accounts(iq) -> tuple[dict, dict]:
    """Two CONNECTED accounts with contents since FROM, of two creators whose accounts are all CONNECTED."""
    found, creators = [], set()
    for account in iq.get("/v1/accounts", params={"limit": 100}).json()["data"]:
        creator = account["user"]["id"]
        mine = iq.get("/v1/accounts", params={"user_id": creator}).json()["data"]
        params = {"account_id": account["id"], "from_date": FROM.isoformat(), "limit": 1}
        if creator in creators or any(a["status"] != "CONNECTED" for a in mine):
            continue
        if iq.get("/v1/social/contents", params=params).json()["data"]:
            found.append(account)
            creators.add(creator)
        if len(found) == 2:
            return found[0], found[1]
    raise AssertionError("fewer than two connected accounts with recent contents")


def _owe(state, *account_ids: str) -> None:
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", *account_ids], T)


def _read_send(state, hook, insider, tmp_path, run: str) -> dict:
    from tests.pipeline.test_history_adversarial import _send_with

    rows = history.due(state.history_due(10), T, 0)
    manifest = history.read_due(hook, rows, out_dir=tmp_path / run, from_date=FROM, days=15)
    totals = history.send_windows(manifest, run_id=run, send=_send_with(state, insider))
    history.finish(state, manifest, totals, run)
    return manifest


def _statuses(state, *account_ids: str) -> dict[str, tuple[str, int]]:
    return {r.account_id: (r.status, r.attempts) for r in state.history_accounts(list(account_ids))}


def _sent_events(insider) -> Counter:
    return Counter(
        (user["identifiers"]["uuid"], e["event_name"], e["timestamp"], str(sorted(e.get("event_params", {}))))
        for request in insider.requests
        for user in request
        for e in user.get("events", [])
    )


def test_refused_keeps_the_disconnected_account_owed_and_sends_everything_once(
    iq, hook, state, sandbox_env, tmp_path
):
    from tests.pipeline.factories import FakeInsiderHook

    off, on = _two_accounts(iq)
    _owe(state, off["id"], on["id"])
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    iq.post(f"/_sandbox/creators/{off['user']['id']}/disconnect").raise_for_status()
    counts = history.request_jobs(hook, state, state.history_due(10), FROM, T)
    assert counts["refused"] == 1 and counts["accounts"] == 1
    assert _statuses(state, off["id"], on["id"]) == {off["id"]: (PENDING, 1), on["id"]: (REQUESTED, 0)}

    # the disconnected account's jobs went out before it was disconnected: its lists are refused at the read
    state.history_requested([off["id"]], T)
    insider = FakeInsiderHook(per_batch=50)
    manifest = _read_send(state, hook, insider, tmp_path, "h1")
    assert (manifest["accounts"], manifest["refused"]) == ([on["id"]], [off["id"]])
    assert _statuses(state, off["id"], on["id"])[on["id"]][0] == SENT
    assert _statuses(state, off["id"])[off["id"]][0] == REQUESTED  # still owed
    first = _sent_events(insider)
    assert first

    iq.post(f"/_sandbox/creators/{off['user']['id']}/connect").raise_for_status()
    _read_send(state, hook, insider, tmp_path, "h2")
    assert _statuses(state, off["id"])[off["id"]][0] == SENT
    sent = _sent_events(insider)
    assert len(sent) > len(first) and max(sent.values()) == 1  # its past sent, nothing twice


def test_control_refused_without_the_guard_fails_the_request_step(iq, hook, state, sandbox_env, monkeypatch):
    monkeypatch.setattr(history, "refused_errors", lambda: ())
    off, on = _two_accounts(iq)
    _owe(state, off["id"], on["id"])
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    iq.post(f"/_sandbox/creators/{off['user']['id']}/disconnect").raise_for_status()
    rows = sorted(state.history_due(10), key=lambda r: r.account_id != off["id"])  # the refused one first
    with pytest.raises(VendorBadRequestError):
        history.request_jobs(hook, state, rows, FROM, T)
    assert _statuses(state, on["id"])[on["id"]][0] == PENDING


def test_hidden_reads_none_of_the_disconnected_accounts_items_without_a_crash(
    iq, hook, state, sandbox_env, tmp_path
):
    from tests.pipeline.factories import FakeInsiderHook

    off, on = _two_accounts(iq)
    _owe(state, off["id"], on["id"])
    sandbox_env.configure("insightiq", {"disconnected_data": "hidden"})
    iq.post(f"/_sandbox/creators/{off['user']['id']}/disconnect").raise_for_status()
    counts = history.request_jobs(hook, state, state.history_due(10), FROM, T)
    assert (counts["accounts"], counts["refused"]) == (2, 0)
    insider = FakeInsiderHook(per_batch=50)
    manifest = _read_send(state, hook, insider, tmp_path, "h1")
    assert manifest["refused"] == [] and sorted(manifest["accounts"]) == sorted([off["id"], on["id"]])
    sent = _sent_events(insider)
    assert sent and max(sent.values()) == 1
    profiles = {p["account"]["id"] for p in hook.iter_records("profiles", user_id=off["user"]["id"])}
    assert off["id"] not in profiles  # hidden while disconnected
