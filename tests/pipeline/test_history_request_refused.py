"""Adversarial review of the history path's request step (creator_sync.sync.history.request_jobs): an account
whose fetch-historic request InsightIQ refuses with a 400 (the docs say nothing of a job for an account
disconnected since it was seen, nor of a platform without historic data) at the head of the owed rows.

It must not hold back the accounts behind it, run after run: it stays owed with one more attempt and is taken
after the others (store.history.history_due). The control: with the guard off (`refused_errors` empty) every
run fails at it and the account behind it never gets its jobs. The same for a list InsightIQ refuses for one
account of a read's batch: the others are sent, it stays owed."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from creator_sync.http.errors import VendorBadRequestError
from creator_sync.store import StateStore
from creator_sync.store.history import PENDING, REQUESTED
from creator_sync.sync import history

from .test_history_adversarial import FROM, T, _account, _fleet


@pytest.fixture
def state(monkeypatch, tmp_path):
    """A SQLite state store, also the one the read's transform opens (CREATOR_SYNC_STATE_URL)."""
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _refusing_fleet():
    hook = _fleet()
    hook.accounts["a-refused"] = _account("a-refused", "u2")
    hook.accounts["b-ok"] = _account("b-ok", "u3")
    real = hook.fetch_historic

    def fetch_historic(resource, account_id, from_date):
        if account_id == "a-refused":
            raise VendorBadRequestError("no", vendor="insightiq", method="POST", path=resource, status=400)
        return real(resource, account_id, from_date)

    hook.fetch_historic = fetch_historic
    return hook


def _runs(state, limit: int) -> dict[str, str]:
    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "a-refused", "b-ok"], T)
    hook = _refusing_fleet()
    for k in range(3):  # three hourly history runs
        with contextlib.suppress(VendorBadRequestError):
            history.request_jobs(hook, state, state.history_due(limit), FROM, T + timedelta(hours=k))
    return {r.account_id: r.status for r in state.history_accounts(["a-refused", "b-ok"])}


@pytest.mark.parametrize("limit", [1, 10])
def test_an_account_insightiq_refuses_does_not_hold_back_the_others(state, limit):
    assert _runs(state, limit) == {"a-refused": PENDING, "b-ok": REQUESTED}
    (refused,) = state.history_accounts(["a-refused"])
    assert refused.attempts >= 1


def test_control_without_the_guard_the_account_behind_never_gets_its_jobs(state, monkeypatch):
    monkeypatch.setattr(history, "refused_errors", lambda: ())
    assert _runs(state, 10) == {"a-refused": PENDING, "b-ok": PENDING}


# -- the read: a list InsightIQ refuses for one account of the batch ----------------------------------------
def _read_send(state, tmp_path, hook):
    from .factories import FakeInsiderHook
    from .test_history_adversarial import _send_with

    history.discover(state, ["old"], T - timedelta(days=1))
    history.discover(state, ["old", "a-refused", "b-ok"], T)
    state.history_requested(["a-refused", "b-ok"], T)
    rows = state.history_due(10)
    manifest = history.read_due(hook, rows, out_dir=tmp_path / "h", from_date=FROM, days=3)
    insider = FakeInsiderHook(per_batch=50)
    totals = history.send_windows(manifest, run_id="h1", send=_send_with(state, insider))
    history.finish(state, manifest, totals, "h1")
    return manifest


def _refusing_lists(monkeypatch):
    hook = _fleet()
    hook.accounts["a-refused"] = _account("a-refused", "u2")
    hook.accounts["b-ok"] = _account("b-ok", "u3")
    hook.users.update({u: {"id": u, "name": "n"} for u in ("u2", "u3")})
    real = hook.iter_records

    def iter_records(resource, **params):
        if resource == "contents" and params.get("account_id") == "a-refused":
            raise VendorBadRequestError("no", vendor="insightiq", method="GET", path=resource, status=400)
        return real(resource, **params)

    hook.iter_records = iter_records
    return hook


def test_a_list_insightiq_refuses_for_one_account_leaves_it_owed_and_sends_the_others(
    state, tmp_path, monkeypatch
):
    manifest = _read_send(state, tmp_path, _refusing_lists(monkeypatch))
    assert (manifest["accounts"], manifest["refused"]) == (["b-ok"], ["a-refused"])
    rows = {r.account_id: r for r in state.history_accounts(["a-refused", "b-ok"])}
    assert (rows["b-ok"].status, rows["a-refused"].status) == ("sent", REQUESTED)
    assert rows["a-refused"].attempts == 1


def test_control_without_the_guard_one_refused_list_fails_the_whole_read(state, tmp_path, monkeypatch):
    monkeypatch.setattr(history, "refused_errors", lambda: ())
    with pytest.raises(VendorBadRequestError):
        _read_send(state, tmp_path, _refusing_lists(monkeypatch))
    assert {r.status for r in state.history_accounts(["a-refused", "b-ok"])} == {REQUESTED}


# -- the read's directory: the profiles of one account InsightIQ refuses ------------------------------------
def _refusing_profiles():
    hook = _refusing_lists(None)
    real = hook.iter_records

    def iter_records(resource, **params):
        if resource == "profiles" and params.get("account_id") == "a-refused":
            raise VendorBadRequestError("no", vendor="insightiq", method="GET", path=resource, status=400)
        if resource == "contents" and params.get("account_id") == "a-refused":
            return iter(())  # only its profiles are refused
        return real(resource, **params)

    hook.iter_records = iter_records
    return hook


def test_the_profiles_insightiq_refuses_for_one_account_leave_it_owed_and_send_the_others(state, tmp_path):
    """A list by account_id refused for an account disconnected since its jobs went out (the sandbox's
    `disconnected_data=refused` reading) includes its profiles, read once for the batch's directory."""
    manifest = _read_send(state, tmp_path, _refusing_profiles())
    assert (manifest["accounts"], manifest["refused"]) == (["b-ok"], ["a-refused"])
    rows = {r.account_id: r for r in state.history_accounts(["a-refused", "b-ok"])}
    assert (rows["b-ok"].status, rows["a-refused"].status, rows["a-refused"].attempts) == (
        "sent",
        REQUESTED,
        1,
    )


def test_control_without_the_guard_refused_profiles_fail_the_whole_read(state, tmp_path, monkeypatch):
    monkeypatch.setattr(history, "refused_errors", lambda: ())
    with pytest.raises(VendorBadRequestError):
        _read_send(state, tmp_path, _refusing_profiles())
    assert {r.status for r in state.history_accounts(["a-refused", "b-ok"])} == {REQUESTED}
