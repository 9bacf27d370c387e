"""Which limiter a client gets: backend and safety margin from the environment, limits from the pools file.

- ``$CREATOR_SYNC_RATE_LIMIT_BACKEND``: ``local`` (default; in-process, each limiter spends the per-slot
  share limit / pool slots, so all slots of a pool busy at once stay under the vendor limit with no shared
  state), ``file:///path/dir`` (one SQLite file shared by every process on the machine) or
  ``redis://host:port/db`` (shared across Celery workers). With a shared backend each limiter may spend the
  whole limit; all of them together never exceed it.
- ``$CREATOR_SYNC_RATE_LIMIT_MARGIN``: the safety margin as a fraction of the window, against the
  send-to-arrival jitter (docs/production.md, section 4; measured figures in docs/performance.md).
- ``$CREATOR_SYNC_RATE_LIMIT_BURST`` (>= 1): pacing ticks a limiter may lend to the next ready client (see
  ``window``); 1 = strictly even spacing.
Types, defaults and allowed values: docs/settings.md (creator_sync.settings).
"""

from __future__ import annotations

from urllib.parse import urlparse

from creator_sync import settings
from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.limiter.base import Limiter
from creator_sync.http.limiter.local import SlidingWindowLimiter
from creator_sync.http.limiter.window import effective_window
from creator_sync.limits import rate_limit

BACKEND_ENV = "CREATOR_SYNC_RATE_LIMIT_BACKEND"
MARGIN_ENV = "CREATOR_SYNC_RATE_LIMIT_MARGIN"
BURST_ENV = "CREATOR_SYNC_RATE_LIMIT_BURST"
DEFAULT_MARGIN = settings.default("rate_limit_margin")
DEFAULT_BURST = settings.default("rate_limit_burst")


def margin() -> float:
    return settings.current().rate_limit_margin


def burst() -> float:
    return settings.current().rate_limit_burst


def backend() -> str:
    return settings.current().rate_limit_backend


def build_limiter(
    pool: str, *, backend_url: str | None = None, safety_margin: float | None = None, slots: int = 1
) -> Limiter:
    """The limiter for one client of ``pool`` (limits from the pools file, backend from the env).

    ``slots``: the pool slots the client's task holds (its ``pool_slots``). The local backend spends that
    many slots' share (creator_sync.limits.RateLimit.share); a shared backend spends the whole limit anyway.
    """
    spec = rate_limit(pool)
    url = backend_url if backend_url is not None else backend()
    window = effective_window(spec.window, margin() if safety_margin is None else safety_margin)
    lend = burst()
    if url == "local":
        return SlidingWindowLimiter(spec.share(slots), window, name=pool, burst=lend)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from creator_sync.http.limiter.shared_file import SqliteLimiter

        return SqliteLimiter(spec.limit, window, name=pool, directory=parsed.path, burst=lend)
    if parsed.scheme in ("redis", "rediss", "unix"):
        from creator_sync.http.limiter.shared_redis import RedisLimiter

        return RedisLimiter(spec.limit, window, name=pool, url=url, burst=lend)
    raise CreatorSyncConfigError(
        f"{BACKEND_ENV} must be 'local', 'file:///dir' or 'redis://host:port/db'; "
        f"got scheme {parsed.scheme!r}"
    )
