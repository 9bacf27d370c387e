"""Tests that need PostgreSQL or Redis: skip on a developer machine without them, FAIL in CI.

With ``CI=true`` (set by .ci/run and CI providers) a missing service is a failure, never a skip: a green
CI run then really ran the PostgreSQL/Redis tests. Availability checks live in devtools.celery_stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(missing: str | Iterable[str] | None, what: str) -> None:
    """Skip (locally) or fail (CI=true) the calling test when ``missing`` names unavailable services."""
    reasons = [missing] if isinstance(missing, str) else list(missing or [])
    if not reasons:
        return
    text = f"{what} needs a service that is not reachable: {'; '.join(reasons)}"
    if in_ci():
        pytest.fail(f"{text} (CI=true: a missing service is a failure; .ci/run starts PostgreSQL and Redis)")
    pytest.skip(text)


def require_postgres(what: str) -> None:
    from devtools.celery_stack import postgres_unavailable

    require(postgres_unavailable(), what)


def require_redis(what: str) -> None:
    from devtools.celery_stack import redis_unavailable

    require(redis_unavailable(), what)
