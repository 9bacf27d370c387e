"""The limiter tests of this directory assume no shared budget unless a test configures one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _local_limiter(monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
