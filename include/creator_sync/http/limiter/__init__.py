"""Request limiters: one sliding-window rule (``window.decide``) behind three backends.

``window`` the decision, ``base`` the interface, one backend per module (``local``, ``shared_file``,
``shared_redis``), ``config`` picks one from the environment (``build_limiter``).
"""

from creator_sync.http.limiter.base import Limiter, LimiterStats, Reservation, UnlimitedLimiter
from creator_sync.http.limiter.config import BACKEND_ENV, BURST_ENV, MARGIN_ENV, build_limiter
from creator_sync.http.limiter.local import SlidingWindowLimiter
from creator_sync.http.limiter.shared_file import SqliteLimiter
from creator_sync.http.limiter.shared_redis import RedisLimiter
from creator_sync.http.limiter.window import decide

__all__ = [
    "BACKEND_ENV",
    "BURST_ENV",
    "MARGIN_ENV",
    "Limiter",
    "LimiterStats",
    "RedisLimiter",
    "Reservation",
    "SlidingWindowLimiter",
    "SqliteLimiter",
    "UnlimitedLimiter",
    "build_limiter",
    "decide",
]
