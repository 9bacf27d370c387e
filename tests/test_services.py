"""devtools.services: a missing PostgreSQL/Redis skips a test locally and fails it with CI=true."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from devtools.services import require


def test_a_missing_service_skips_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="Redis at x:1 unreachable"):
        require("Redis at x:1 unreachable", "a Redis test")


def test_a_missing_service_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI=true: a missing service is a failure"):
        require(["PostgreSQL down", "Redis down"], "the Celery stack")


def test_nothing_missing_passes(monkeypatch):
    monkeypatch.setenv("CI", "true")
    require(None, "x")
    require([], "x")
