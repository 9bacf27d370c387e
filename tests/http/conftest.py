"""The limiter tests of this directory assume no shared budget unless a test configures one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _local_limiter(monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")


@pytest.fixture(autouse=True)
def _quick_lost_answer_probes(monkeypatch):
    """Lost answers settle without the production waits (tests that model ingestion lag set their own)."""
    from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, SETTLE_ENV

    monkeypatch.setenv(SETTLE_ENV, "0")
    monkeypatch.setenv(PROBE_BACKOFF_ENV, "0")
