"""Request limiters: a sliding window over send times, local or shared between processes.

Invariant (every backend): in any interval of ``window`` seconds the recorded sends cost at most
``limit``. ``window`` is the vendor's window stretched by a safety margin, so a vendor counting in
*fixed* windows of the documented length never sees more than ``limit`` whatever their alignment
and however send-to-arrival latency varies (up to the margin).

Backends, chosen by ``$CREATOR_SYNC_RATE_LIMIT_BACKEND``:
- ``local`` (default): in-process; each limiter spends the per-slot share (limit / pool slots) so all
  slots of a pool busy at once stay under the vendor limit with no shared state.
- ``file:///path/dir``: one SQLite file in that directory, shared by every process on the machine.
- ``redis://host:port/db``: a Redis sorted set (server clock), shared across Celery workers.
With a shared backend each limiter may spend the whole limit; all of them together never exceed it.

Pacing (default on): consecutive sends are also spaced by ``window / limit`` (times the previous send's
cost), so a full budget goes out evenly instead of in bursts at window edges. Bursts arrive at the vendor
together and get counted with queueing delays that can exceed the margin; even spacing keeps the
send-to-count jitter small and the vendor's concurrent-request count low, at no cost in throughput.

``$CREATOR_SYNC_RATE_LIMIT_MARGIN`` (default 0.03) is the safety margin as a fraction of the window.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from creator_sync.http.errors import CreatorSyncConfigError
from creator_sync.limits import RateLimit, rate_limit

BACKEND_ENV = "CREATOR_SYNC_RATE_LIMIT_BACKEND"
MARGIN_ENV = "CREATOR_SYNC_RATE_LIMIT_MARGIN"
DEFAULT_MARGIN = 0.03


@dataclass
class Reservation:
    """A recorded send; ``settle`` corrects its cost once the real cost is known."""

    id: str
    cost: float
    at: float


@dataclass
class LimiterStats:
    acquired: int = 0
    waited_seconds: float = 0.0
    waits: int = 0


class Limiter:
    """Interface: ``acquire(cost)`` blocks until the send fits, records it and returns a reservation."""

    limit: float
    window: float
    name: str
    stats: LimiterStats

    def acquire(self, cost: float = 1.0) -> Reservation:
        raise NotImplementedError

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        """Replace a reservation's estimated cost by the actual one (quota-unit limiters)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.limit:g} per {self.window:g}s)"

    def __repr__(self) -> str:
        return self.describe()


class UnlimitedLimiter(Limiter):
    def __init__(self, name: str = "unlimited") -> None:
        self.name, self.limit, self.window, self.stats = name, math.inf, 0.0, LimiterStats()

    def acquire(self, cost: float = 1.0) -> Reservation:
        self.stats.acquired += 1
        return Reservation(uuid.uuid4().hex, cost, time.time())

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        reservation.cost = actual_cost


def _check(limit: float, window: float) -> None:
    if not (limit > 0 and window > 0):
        raise CreatorSyncConfigError(f"rate limit must be positive, got {limit} per {window}s")


class SlidingWindowLimiter(Limiter):
    """In-process sliding window (thread-safe). ``clock``/``sleep`` are injectable for tests."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str = "local",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
    ) -> None:
        _check(limit, window)
        self.limit, self.window, self.name, self.pace = float(limit), float(window), name, pace
        self._clock, self._sleep = clock, sleep
        self._sends: collections.deque[Reservation] = collections.deque()
        self._lock = threading.Lock()
        self.stats = LimiterStats()

    def _try(self, cost: float) -> tuple[Reservation | None, float]:
        now = self._clock()
        cutoff = now - self.window
        while self._sends and self._sends[0].at <= cutoff:
            self._sends.popleft()
        used = sum(r.cost for r in self._sends)
        if self.pace and self._sends:
            last = self._sends[-1]
            gap = last.at + self.window * min(last.cost, self.limit) / self.limit - now
            if gap > 1e-9:
                return None, gap
        # A cost larger than the whole limit may go only into an empty window (never deadlock).
        if used + cost <= self.limit + 1e-9 or not self._sends:
            res = Reservation(uuid.uuid4().hex, cost, now)
            self._sends.append(res)
            return res, 0.0
        # wait until enough of the oldest sends leave the window
        need = used + cost - self.limit
        freed = 0.0
        for r in self._sends:
            freed += r.cost
            if freed >= need - 1e-9:
                return None, max(r.at + self.window - now, 1e-4)
        return None, max(self._sends[-1].at + self.window - now, 1e-4)

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            with self._lock:
                res, wait = self._try(cost)
            if res is not None:
                self.stats.acquired += 1
                return res
            self.stats.waits += 1
            self.stats.waited_seconds += wait
            self._sleep(wait)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        with self._lock:
            reservation.cost = float(actual_cost)  # the deque holds the same object

    def sends_in_window(self) -> float:
        with self._lock:
            now = self._clock()
            return sum(r.cost for r in self._sends if r.at > now - self.window)


class SqliteLimiter(Limiter):
    """Sliding window in a SQLite file shared by all processes of one machine (wall clock)."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str,
        directory: str | os.PathLike,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
    ) -> None:
        _check(limit, window)
        self.limit, self.window, self.name, self.pace = float(limit), float(window), name, pace
        self._clock, self._sleep = clock, sleep
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / "creator_sync_rate_limits.sqlite"
        self._local = threading.local()
        self.stats = LimiterStats()
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sends (bucket TEXT, id TEXT PRIMARY KEY, at REAL, cost REAL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS sends_bucket_at ON sends (bucket, at)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self):
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            with self._tx() as db:
                now = self._clock()
                db.execute("DELETE FROM sends WHERE bucket = ? AND at <= ?", (self.name, now - self.window))
                rows = db.execute(
                    "SELECT at, cost FROM sends WHERE bucket = ? ORDER BY at", (self.name,)
                ).fetchall()
                used = sum(c for _, c in rows)
                gap = 0.0
                if self.pace and rows:
                    gap = rows[-1][0] + self.window * min(rows[-1][1], self.limit) / self.limit - now
                if gap > 1e-9:
                    wait = gap
                elif used + cost <= self.limit + 1e-9 or not rows:
                    res = Reservation(uuid.uuid4().hex, cost, now)
                    db.execute("INSERT INTO sends VALUES (?, ?, ?, ?)", (self.name, res.id, now, cost))
                    self.stats.acquired += 1
                    return res
                else:
                    need, freed, wait = used + cost - self.limit, 0.0, None
                    for at, c in rows:
                        freed += c
                        if freed >= need - 1e-9:
                            wait = at + self.window - now
                            break
                    wait = max(wait if wait is not None else rows[-1][0] + self.window - now, 1e-4)
            self.stats.waits += 1
            self.stats.waited_seconds += wait
            self._sleep(wait)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE sends SET cost = ? WHERE id = ?", (float(actual_cost), reservation.id))
        reservation.cost = float(actual_cost)


_REDIS_ACQUIRE = """
-- KEYS[1] zset id -> send time; KEYS[1]:costs hash id -> cost; KEYS[1]:total running sum of costs
local key = KEYS[1]
local costs_key = key .. ':costs'
local total_key = key .. ':total'
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local id = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
for _, m in ipairs(expired) do
  local c = tonumber(redis.call('HGET', costs_key, m) or '0')
  redis.call('INCRBYFLOAT', total_key, -c)
  redis.call('HDEL', costs_key, m)
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window) end
local n = redis.call('ZCARD', key)
local used = 0
if n == 0 then redis.call('SET', total_key, 0) else used = tonumber(redis.call('GET', total_key) or '0') end
local ttl = math.ceil(window * 1000) + 60000
if ARGV[5] == '1' and n > 0 then
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local last_cost = tonumber(redis.call('HGET', costs_key, last[1]) or '1')
  local gap = tonumber(last[2]) + window * math.min(last_cost, limit) / limit - now
  if gap > 1e-9 then return {'wait', tostring(gap)} end
end
if used + cost <= limit + 1e-9 or n == 0 then
  redis.call('ZADD', key, now, id)
  redis.call('HSET', costs_key, id, cost)
  redis.call('INCRBYFLOAT', total_key, cost)
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', costs_key, ttl)
  redis.call('PEXPIRE', total_key, ttl)
  return {'ok', tostring(now)}
end
local need = used + cost - limit
local freed = 0
local start = 0
local last = now
while true do
  local page = redis.call('ZRANGE', key, start, start + 99, 'WITHSCORES')
  if #page == 0 then break end
  for i = 1, #page, 2 do
    last = tonumber(page[i + 1])
    freed = freed + tonumber(redis.call('HGET', costs_key, page[i]) or '0')
    if freed >= need - 1e-9 then
      return {'wait', tostring(math.max(last + window - now, 0.0001))}
    end
  end
  start = start + 100
end
return {'wait', tostring(math.max(last + window - now, 0.0001))}
"""

_REDIS_SETTLE = """
local key = KEYS[1]
local old = redis.call('HGET', key .. ':costs', ARGV[1])
if not old then return 0 end
redis.call('HSET', key .. ':costs', ARGV[1], ARGV[2])
redis.call('INCRBYFLOAT', key .. ':total', tonumber(ARGV[2]) - tonumber(old))
return 1
"""


class RedisLimiter(Limiter):
    """Sliding window in Redis (Lua, Redis server clock): shared by every worker using the same Redis."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str,
        url: str,
        sleep: Callable[[float], None] = time.sleep,
        client=None,
        pace: bool = True,
    ) -> None:
        _check(limit, window)
        import redis

        self.limit, self.window, self.name, self.pace = float(limit), float(window), name, pace
        self._sleep = sleep
        self._redis = client or redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._script = self._redis.register_script(_REDIS_ACQUIRE)
        self._settle = self._redis.register_script(_REDIS_SETTLE)
        self.key = f"creator_sync:ratelimit:{name}"
        self.stats = LimiterStats()

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            rid = uuid.uuid4().hex
            status, value = self._script(
                keys=[self.key], args=[self.limit, self.window, cost, rid, "1" if self.pace else "0"]
            )
            status = status.decode() if isinstance(status, bytes) else status
            value = float(value.decode() if isinstance(value, bytes) else value)
            if status == "ok":
                self.stats.acquired += 1
                return Reservation(rid, cost, value)
            self.stats.waits += 1
            self.stats.waited_seconds += value
            self._sleep(value)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        self._settle(keys=[self.key], args=[reservation.id, float(actual_cost)])
        reservation.cost = float(actual_cost)

    def describe(self) -> str:  # never show a password that may be in the URL
        return f"RedisLimiter({self.name}: {self.limit:g} per {self.window:g}s)"


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
    spec: RateLimit = rate_limit(pool)
    url = backend_url if backend_url is not None else backend()
    m = margin() if safety_margin is None else safety_margin
    window = spec.window * (1.0 + m)
    if url == "local":
        return SlidingWindowLimiter(spec.per_slot_limit, window, name=pool)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return SqliteLimiter(spec.limit, window, name=pool, directory=parsed.path)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisLimiter(spec.limit, window, name=pool, url=url)
    raise CreatorSyncConfigError(
        f"{BACKEND_ENV} must be 'local', 'file:///dir' or 'redis://host:port/db'; "
        f"got scheme {parsed.scheme!r}"
    )


__all__ = [
    "BACKEND_ENV",
    "MARGIN_ENV",
    "Limiter",
    "LimiterStats",
    "RedisLimiter",
    "Reservation",
    "SlidingWindowLimiter",
    "SqliteLimiter",
    "UnlimitedLimiter",
    "build_limiter",
]
