"""Which limiter a client gets: backend and safety margin from the environment, limits from the pools file.

- ``$CREATOR_SYNC_RATE_LIMIT_BACKEND``: ``local`` (default; in-process, each limiter spends the per-slot
  share limit / pool slots, so all slots of a pool busy at once stay under the vendor limit with no shared
  state), ``file:///path/dir`` (one SQLite file shared by every process on the machine) or
  ``redis://host:port/db`` (shared across Celery workers). With a shared backend each limiter may spend the
  whole limit; all of them together never exceed it.
- ``$CREATOR_SYNC_RATE_LIMIT_MARGIN`` (default 0.03): the safety margin as a fraction of the window.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from creator_sync.http.errors import CreatorSyncConfigError
from creator_sync.http.limiter.base import Limiter
from creator_sync.http.limiter.local import SlidingWindowLimiter
from creator_sync.http.limiter.window import effective_window
from creator_sync.limits import rate_limit

BACKEND_ENV = "CREATOR_SYNC_RATE_LIMIT_BACKEND"
MARGIN_ENV = "CREATOR_SYNC_RATE_LIMIT_MARGIN"
DEFAULT_MARGIN = 0.03


def margin() -> float:
    raw = os.environ.get(MARGIN_ENV)
    if not raw:
        return DEFAULT_MARGIN
    try:
        value = float(raw)
    except ValueError:
        raise CreatorSyncConfigError(f"{MARGIN_ENV} must be a number, got {raw!r}") from None
    if not 0 <= value < 1:
        raise CreatorSyncConfigError(f"{MARGIN_ENV} must be in [0, 1), got {value}")
    return value


def backend() -> str:
    return os.environ.get(BACKEND_ENV, "").strip() or "local"


def build_limiter(
    pool: str, *, backend_url: str | None = None, safety_margin: float | None = None
) -> Limiter:
    """The limiter for one client of ``pool`` (limits from the pools file, backend from the env)."""
    spec = rate_limit(pool)
    url = backend_url if backend_url is not None else backend()
    window = effective_window(spec.window, margin() if safety_margin is None else safety_margin)
    if url == "local":
        return SlidingWindowLimiter(spec.per_slot_limit, window, name=pool)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from creator_sync.http.limiter.shared_file import SqliteLimiter

        return SqliteLimiter(spec.limit, window, name=pool, directory=parsed.path)
    if parsed.scheme in ("redis", "rediss", "unix"):
        from creator_sync.http.limiter.shared_redis import RedisLimiter

        return RedisLimiter(spec.limit, window, name=pool, url=url)
    raise CreatorSyncConfigError(
        f"{BACKEND_ENV} must be 'local', 'file:///dir' or 'redis://host:port/db'; "
        f"got scheme {parsed.scheme!r}"
    )
