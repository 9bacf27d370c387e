"""The creator_sync per-account reads (creator_sync.sync.insightiq_reads: an account shard's income
transactions, payouts and audience; the run's contents per account) against the InsightIQ sandbox under
``disconnected_data=refused`` (devtools/sandbox/readings.py): a request naming a disconnected account is a 400
(``account_not_connected``).

- The reads finish: a refused account whose record is not CONNECTED is no data this run, named in the
  shard's ``refused`` figures and in the run report's ``refused_accounts``; the connected accounts' records
  are the same as under ``listed``. The control: with the guard switched off (``refusal_errors`` empty) the
  shard fails with VendorBadRequestError at the first refused account.
- A 400 for an account whose record (as the run read it) is CONNECTED fails the read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest
from sandbox_samples import IQ_AUTH, NOW

from creator_sync.http.errors import VendorBadRequestError
from creator_sync.sync import contents_read
from creator_sync.sync import insightiq_reads as reads
from creator_sync.sync.run_context import SyncRun

pytestmark = pytest.mark.slow

END = datetime.fromisoformat(NOW.replace("Z", "+00:00")).astimezone(UTC)
LISTS = ("transactions", "payouts", "audience")


@pytest.fixture
def iq(sandbox_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    with httpx.Client(base_url=sandbox_env.insightiq_url, auth=IQ_AUTH, timeout=30) as client:
        yield client
    sandbox_env.configure("insightiq", {"disconnected_data": "listed"})
    sandbox_env.reset("insightiq")


def _run(name: str, days: int = 30) -> SyncRun:
    """A manual run over the sandbox's last `days` days (its income and contents lie there)."""
    return SyncRun(
        f"manual__{name}", END - timedelta(days=1), END, False, False, (), 24 * (days - 1), "manual"
    )


def _income_creators(iq, n: int) -> list[str]:
    """`n` creators with an income-synced account whose accounts are all CONNECTED."""
    accounts = iq.get("/v1/accounts", params={"limit": 100}).json()["data"]
    found: list[str] = []
    for a in accounts:
        creator = a["user"]["id"]
        mine = [b for b in accounts if b["user"]["id"] == creator]
        synced = reads.account_status(a, "income") in reads.INCOME_SYNCED
        if synced and creator not in found and all(b["status"] == "CONNECTED" for b in mine):
            found.append(creator)
        if len(found) == n:
            return found
    raise AssertionError(f"fewer than {n} connected creators with income")


def _shard(hook, run: SyncRun) -> tuple[list[dict], dict]:
    """The accounts of one shard over every account (the first page) and its files, audience included."""
    accounts = list(hook.iter_records("accounts", max_pages=1))
    return accounts, reads.shard_files(hook, run, 0, accounts, audience=True, contents=False)


def _rows(result: dict, name: str) -> pd.DataFrame:
    return pd.read_parquet(result[name]["path"]) if result[name]["count"] else pd.DataFrame()


def _disconnect(iq, creators: list[str]) -> None:
    for creator in creators:
        iq.post(f"/_sandbox/creators/{creator}/disconnect").raise_for_status()


def test_refused_reads_of_disconnected_accounts_are_named_and_the_connected_ones_are_all_read(
    iq, hook, sandbox_env
):
    from creator_sync.pipeline.report import RunSummary

    creators = _income_creators(iq, 2)
    _disconnect(iq, creators)
    _, listed = _shard(hook, _run("listed"))  # the same accounts, everything listed: the expected records
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    run = _run("refused")
    accounts, result = _shard(hook, run)

    off = sorted(a["id"] for a in accounts if a["status"] != "CONNECTED")
    refused = result["refused"]["accounts"]
    assert refused and set(refused) <= set(off)
    owned = {a["id"]: a["user"]["id"] for a in accounts}
    assert {owned[a] for a in result["refused"]["reads"]["social_transactions"]} >= set(creators)
    for name in LISTS:
        expected = _rows(listed, name)
        key = "account.id" if "account.id" in expected else "account_id"
        kept = expected[~expected[key].isin(off)] if len(expected) else expected
        got = _rows(result, name)
        assert len(kept) and len(got) == len(kept), name
        assert not got[key].isin(off).any(), name
    assert reads.refused_accounts(run.dir) == refused
    summary = RunSummary(
        run_id=run.run_id, fetched_creators=0, transformed=0, sent=0, refused_accounts=refused
    )
    assert f"refused_accounts: InsightIQ refused the reads of {len(refused)} account(s)" in summary.render()


def test_contents_per_account_names_the_refused_accounts(iq, hook, sandbox_env, monkeypatch):
    creators = _income_creators(iq, 1)
    _disconnect(iq, creators)
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    lists = hook.iter_records

    def first_page(resource, **kw):  # the accounts list of one page keeps the test short
        return lists(resource, **({"max_pages": 1} if resource == "accounts" else {}), **kw)

    monkeypatch.setattr(hook, "iter_records", first_page)
    run = _run("contents", days=2)
    result = reads.contents_per_account(hook, run)
    accounts = list(hook.iter_records("accounts"))
    off = {a["id"] for a in accounts if a["status"] != "CONNECTED"}
    mine = {a["id"] for a in accounts if a["user"]["id"] == creators[0] and contents_read.has_contents(a)}
    refused = set(result["refused"]["accounts"])
    assert result["count"] and mine and mine <= refused <= off
    assert reads.refused_accounts(run.dir) == sorted(refused)


def test_control_without_the_guard_the_shard_fails_at_the_first_refused_account(
    iq, hook, sandbox_env, monkeypatch
):
    _disconnect(iq, _income_creators(iq, 1))
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    monkeypatch.setattr(reads, "refusal_errors", lambda: ())
    with pytest.raises(VendorBadRequestError):
        _shard(hook, _run("unguarded"))


def test_a_refusal_for_an_account_the_run_read_as_connected_fails_the_read(iq, hook, sandbox_env):
    creators = _income_creators(iq, 1)
    accounts = list(hook.iter_records("accounts", max_pages=1))  # all of its accounts CONNECTED
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    _disconnect(iq, creators)  # after the run read the accounts: its records still say CONNECTED
    with pytest.raises(VendorBadRequestError):
        reads.shard_files(hook, _run("connected"), 0, accounts, audience=True, contents=False)


def test_the_income_sweep_reads_past_a_refused_account_and_names_it(iq, hook, sandbox_env, monkeypatch):
    """The incremental sweep's per-account reads (no account records at hand: the record of a refused
    account is read then); with the guard switched off the same sweep fails."""
    from creator_sync.sync import incremental_fetch, plan

    creators = _income_creators(iq, 6)
    accounts = list(hook.iter_records("accounts", max_pages=1))
    income = [a for a in accounts if reads.account_status(a, "income") in reads.INCOME_SYNCED]
    off = sorted(a["id"] for a in income if a["user"]["id"] == creators[0])
    on = [a["id"] for a in income if a["user"]["id"] in creators[1:]]

    def sweep(ids):
        return plan._per_account("social_transactions", ids, "2025-12-16", "2026-01-15", "sweep")

    run = _run("sweep")
    expected = incremental_fetch._sweep_file(hook, run, sweep(on), 0, "expected", reads.Refusals(()))["count"]
    _disconnect(iq, creators[:1])
    sandbox_env.configure("insightiq", {"disconnected_data": "refused"})
    refusals = reads.Refusals((), lookup=lambda account_id: hook.get_record("accounts", account_id))
    got = pd.read_parquet(
        incremental_fetch._sweep_file(hook, run, sweep(off + on), 0, "sweep", refusals)["path"]
    )
    assert refusals.figures()["accounts"] == off
    assert expected and len(got) == expected and not got["account.id"].isin(off).any()

    monkeypatch.setattr(reads, "refusal_errors", lambda: ())
    with pytest.raises(VendorBadRequestError):
        incremental_fetch._sweep_file(hook, run, sweep(off + on), 0, "unguarded", reads.Refusals(()))
