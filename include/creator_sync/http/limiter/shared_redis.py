"""Sliding window in Redis (Lua, Redis server clock): the ``redis://`` backend, shared by every worker.

``DECIDE_LUA`` is ``window.decide`` written in Lua; the acquire script loads the window's sends and asks
it. tests/http/test_limiter.py runs both on the same sequences of send times.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from creator_sync.http.limiter.base import Reservation, WindowLimiter

# window.decide, line for line: ats/costs oldest first; returns the wait in seconds (0 = send now).
DECIDE_LUA = """
local function decide(ats, costs, now, cost, limit, window, pace, burst)
  local live_at, live_cost = {}, {}
  for i = 1, #ats do
    if ats[i] > now - window then
      live_at[#live_at + 1] = ats[i]
      live_cost[#live_cost + 1] = costs[i]
    end
  end
  local n = #live_at
  if pace and n > 0 then
    local tick = window / limit
    local lent = burst - 1.0
    local gap, spent = -1.0, 0.0
    for i = n, 1, -1 do
      spent = spent + math.min(live_cost[i], limit)
      if spent > lent + 1e-9 then gap = math.max(gap, live_at[i] + (spent - lent) * tick - now) end
    end
    if gap > 1e-9 then return gap end
  end
  local used = 0.0
  for i = 1, n do used = used + live_cost[i] end
  if used + cost <= limit + 1e-9 or n == 0 then return 0.0 end
  local need = used + cost - limit
  local freed = 0.0
  for i = 1, n do
    freed = freed + live_cost[i]
    if freed >= need - 1e-9 then return math.max(live_at[i] + window - now, 0.0001) end
  end
  return math.max(live_at[n] + window - now, 0.0001)
end
"""

# KEYS[1]: zset id -> send time; KEYS[1]:costs hash id -> cost.
# ARGV: limit, window, cost, id, pace ('1'/'0'), burst. Returns {'ok', now} or {'wait', seconds}.
ACQUIRE_LUA = (
    DECIDE_LUA
    + """
local key = KEYS[1]
local costs_key = key .. ':costs'
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local id = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
for _, m in ipairs(expired) do redis.call('HDEL', costs_key, m) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window) end
local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local ats, costs = {}, {}
for i = 1, #members, 2 do
  ats[#ats + 1] = tonumber(members[i + 1])
  costs[#costs + 1] = tonumber(redis.call('HGET', costs_key, members[i]) or '0')
end
local wait = decide(ats, costs, now, cost, limit, window, ARGV[5] == '1', tonumber(ARGV[6]))
if wait > 0 then return {'wait', string.format('%.17g', wait)} end
local ttl = math.ceil(window * 1000) + 60000
redis.call('ZADD', key, now, id)
redis.call('HSET', costs_key, id, cost)
redis.call('PEXPIRE', key, ttl)
redis.call('PEXPIRE', costs_key, ttl)
return {'ok', string.format('%.17g', now)}
"""
)

SETTLE_LUA = """
local costs_key = KEYS[1] .. ':costs'
if redis.call('HEXISTS', costs_key, ARGV[1]) == 0 then return 0 end
redis.call('HSET', costs_key, ARGV[1], ARGV[2])
return 1
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLimiter(WindowLimiter):
    """Sends of every worker using the same Redis (the server's clock decides, not the workers')."""

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
        burst: float = 1.0,
    ) -> None:
        import redis

        super().__init__(limit, window, name=name, sleep=sleep, pace=pace, burst=burst)
        self._redis = client or redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._script = self._redis.register_script(ACQUIRE_LUA)
        self._settle = self._redis.register_script(SETTLE_LUA)
        self.key = f"creator_sync:ratelimit:{name}"

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            rid = uuid.uuid4().hex
            status, value = self._script(
                keys=[self.key],
                args=[self.limit, self.window, cost, rid, "1" if self.pace else "0", self.burst],
            )
            seconds = float(_text(value))
            if _text(status) == "ok":
                self.stats.acquired += 1
                return Reservation(rid, cost, seconds)
            self._waited(seconds)
            self._sleep(seconds)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        self._settle(keys=[self.key], args=[reservation.id, float(actual_cost)])
        reservation.cost = float(actual_cost)

    def describe(self) -> str:  # never show a password that may be in the URL
        return f"RedisLimiter({self.name}: {self.limit:g} per {self.window:g}s)"
