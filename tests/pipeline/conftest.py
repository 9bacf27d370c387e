"""Fixtures for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .factories import SANDBOX_NOW, content, profile, transaction, write_resource


@pytest.fixture(scope="module")
def sandbox(request):
    """150 creators (~3 pages of accounts) keep the per-account income requests few at 10/s; a fixed data
    anchor keeps the data fixed. Overrides tests/conftest.py's 1,000-creator sandbox in this directory. A
    module that sets SANDBOX_RATE gets InsightIQ at that many requests/s, and its clients the same budget
    (_client_rate): for modules that check what a run reads and sends, not the 10/s limit
    (tests/hooks/test_limit_control.py checks that), so their full fetches take seconds. A module that sets
    SANDBOX_CREATORS gets that many creators instead (its docstring or comment says why it is enough)."""
    from devtools.sandbox.launcher import SandboxServers

    rate = getattr(request.module, "SANDBOX_RATE", None)
    args = ["--now", SANDBOX_NOW, *(["--insightiq-rate", str(rate)] if rate else [])]
    creators = getattr(request.module, "SANDBOX_CREATORS", 150)
    with SandboxServers(creators=creators, seed=7, extra_args=args) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _client_rate(request, monkeypatch):
    """The client's pools.json raised to the module's SANDBOX_RATE (see `sandbox`), when it sets one."""
    if rate := getattr(request.module, "SANDBOX_RATE", None):
        from devtools.bench.e2e import raised_config_dir

        config = request.getfixturevalue("tmp_path") / "config"
        monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(config, rate)))


@pytest.fixture
def shared_rate_budget(monkeypatch, tmp_path):
    """One shared rate budget: hooks running one after another each get the whole 10/s, as in the DAG."""
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path / 'rate-limits'}")


@pytest.fixture
def local_sync_store(monkeypatch, tmp_path):
    """Run files (file://) and sync state (SQLite) of this test only; the default fetch mode."""
    from creator_sync.sync.fetch_mode import FETCH_MODE_ENV

    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.delenv(FETCH_MODE_ENV, raising=False)


@pytest.fixture
def fetched(tmp_path: Path):
    """A small fetch: 4 creators (one with two accounts), contents inside and outside the interval."""

    def make(profiles=None, users=None, contents=None, transactions=None) -> dict[str, list[Path]]:
        root = tmp_path / "fetch"
        users = users or [
            {"id": "u1", "name": "one", "external_id": "ext-1"},
            {"id": "u2", "name": "two", "external_id": "ext-2"},
            {"id": "u3", "name": "three", "external_id": None},
            {"id": "u4", "name": "four", "external_id": "ext-4"},
        ]
        profiles = profiles or [
            profile(
                "u1",
                "a1",
                "Instagram",
                "2024-04-01T00:00:00Z",
                first_name="Old",
                last_name="Name",
                country="GB",
                language="en",
                emails=[{"type": "WORK", "email_id": "old@example.com"}],
            ),
            profile(
                "u1",
                "a2",
                "YouTube",
                "2024-04-20T00:00:00Z",
                full_name="Ada Lovelace King",
                country="GB",
                language="EN",
                emails=[{"type": "PERSONAL", "email_id": " Ada@Example.com "}],
                phone_numbers=[{"type": "MOBILE", "phone_number": "020 7946 0018"}],
                reputation={
                    "follower_count": 2000,
                    "following_count": 1,
                    "content_count": 40,
                    "subscriber_count": 2000,
                },
            ),
            profile(
                "u2",
                "a3",
                "Instagram",
                "2024-04-01T00:00:00Z",
                first_name="Bo",
                country="US",
                phone_numbers=[{"type": "MOBILE", "phone_number": "12345"}],
            ),
            profile(
                "u3",
                "a4",
                "TikTok",
                "2024-04-01T00:00:00Z",
                first_name="Cy",
                country="DE",
                emails=[{"type": "WORK", "email_id": "not-an-email"}],
            ),
            profile("u4", "a5", "Instagram", "2024-04-01T00:00:00Z", first_name="Di", country="FR"),
        ]
        contents = (
            contents
            if contents is not None
            else [
                content("c1", "u1", "2024-05-01T10:00:00Z"),
                content("c2", "u1", "2024-05-01T23:59:59.500Z", platform="YouTube"),
                content("c3", "u1", "2024-04-30T23:59:59Z"),  # before the interval
                content("c4", "u1", "2024-05-02T00:00:00Z"),  # end is exclusive
                content("c5", "u2", "2024-05-01T12:00:00Z"),
                content("c6", "u9", "2024-05-01T12:00:00Z"),  # user not fetched: orphan
            ]
        )
        transactions = (
            transactions
            if transactions is not None
            else [
                transaction("t1", "u1", "2024-05-01T08:00:00+02:00"),
                transaction("t2", "u1", "2024-04-15T08:00:00Z"),
            ]
        )
        out = {
            "users": [write_resource(root / "users" / "part-0.parquet", users)],
            "profiles": [write_resource(root / "profiles" / "part-0.parquet", profiles)],
            "accounts": [],
        }
        out["contents"] = [write_resource(root / "contents" / "part-0.parquet", contents)] if contents else []
        out["transactions"] = (
            [write_resource(root / "transactions" / "part-0.parquet", transactions)] if transactions else []
        )
        return out

    return make


@pytest.fixture(autouse=True)
def _quick_lost_answer_probes(monkeypatch):
    """Lost answers settle without the production waits (tests that model ingestion lag set their own)."""
    from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, SETTLE_ENV

    monkeypatch.setenv(SETTLE_ENV, "0")
    monkeypatch.setenv(PROBE_BACKOFF_ENV, "0")
