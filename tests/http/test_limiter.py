"""Limiters: the sliding-window invariant (fake clock), quota settling, file and Redis backends."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import time
import uuid

import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.limiter import (
    RedisLimiter,
    SlidingWindowLimiter,
    SqliteLimiter,
    build_limiter,
    decide,
)
from creator_sync.http.limiter.config import DEFAULT_BURST, DEFAULT_MARGIN
from creator_sync.http.limiter.shared_redis import DECIDE_LUA
from creator_sync.limits import rate_limit
from devtools.services import require


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def max_in_fixed_windows(times: list[float], window: float, offset: float) -> int:
    counts: dict[int, int] = {}
    for t in times:
        k = int((t - offset) // window)
        counts[k] = counts.get(k, 0) + 1
    return max(counts.values())


@pytest.mark.parametrize(("pace", "burst"), [(True, 1.0), (True, 1.1), (True, 3.0), (False, 1.0)])
def test_sliding_window_invariant_with_fake_clock(pace, burst):
    clock = FakeClock()
    lim = SlidingWindowLimiter(10, 1.03, clock=clock, sleep=clock.sleep, pace=pace, burst=burst)
    rng = random.Random(1)
    times = []
    for _ in range(2000):
        clock.now += rng.choice([0, 0, 0, 0.001, 0.05, 0.3])  # bursts and gaps
        times.append(lim.acquire().at)
    assert max_in_any_window(times, 1.03) <= 10
    # the vendor's fixed 1 s windows are safe whatever their alignment
    for offset in [i / 50 for i in range(50)]:
        assert max_in_fixed_windows(times, 1.0, offset) <= 10
    # and it is not idle: a saturated stream runs at ~limit / window
    clock2 = FakeClock()
    lim2 = SlidingWindowLimiter(10, 1.03, clock=clock2, sleep=clock2.sleep, pace=pace, burst=burst)
    start = clock2.now
    for _ in range(1000):
        lim2.acquire()
    # paced: evenly spaced sends (a saturated stream never has a tick to lend); unpaced: 10 go at once
    rate = (1000 - 1 if pace else 1000 - 10) / (clock2.now - start)
    assert 10 / 1.03 * 0.99 <= rate <= 10 / 1.03 * 1.01


def test_pacing_spaces_sends_evenly():
    clock = FakeClock()
    lim = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep)
    times = [lim.acquire().at for _ in range(5)]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.1] * 4


def test_burst_lends_missed_ticks_to_the_next_ready_client():
    clock = FakeClock()
    strict = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep, burst=1)
    lending = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep, burst=3)
    offsets = {}
    for lim in (strict, lending):
        start = clock.now
        lim.acquire()
        clock.now = start + 0.3  # three ticks nobody was ready for
        offsets[lim.burst] = [round(lim.acquire().at - start, 6) for _ in range(5)]
    # strict pacing: every send one tick after the previous one, the three idle ticks are lost
    assert offsets[1.0] == [0.3, 0.4, 0.5, 0.6, 0.7]
    # burst 3: two missed ticks go to the next sends at once, then one tick apart again
    assert offsets[3.0] == [0.3, 0.3, 0.3, 0.4, 0.5]


def test_burst_keeps_the_average_rate_when_wake_ups_are_late():
    """Sleeps that overshoot by 5 ms: strict pacing loses 5 ms per send, burst 2 catches up."""

    def run(burst: float) -> float:
        clock = FakeClock()

        def late_sleep(seconds: float) -> None:
            clock.sleep(seconds + 0.005)

        lim = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=late_sleep, burst=burst)
        start = clock.now
        for _ in range(200):
            lim.acquire()
        return 199 / (clock.now - start)

    assert run(1.0) == pytest.approx(10 / 1.05, rel=0.01)
    assert run(2.0) >= 10 * 0.97
    assert run(1.1) >= 10 * 0.99  # a tenth of a tick (10 ms) covers a 5 ms overshoot


def test_a_fractional_burst_catches_up_late_wake_ups_and_never_sends_two_at_once():
    """Burst 1.1 (the default): sleeps that overshoot by 5-15 ms. Every send stays at least 0.9 ticks after
    the previous one (no two requests leave together, so the arrival spread does not widen), and the rate
    stays at the limit when the overshoot is within the lent tenth of a tick."""
    for overshoot, floor in ((0.005, 0.99), (0.015, 0.94)):
        clock = FakeClock()

        def late_sleep(seconds: float, clock: FakeClock = clock, extra: float = overshoot) -> None:
            clock.sleep(seconds + extra)

        lim = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=late_sleep, burst=1.1)
        times = [lim.acquire().at for _ in range(200)]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.09 - 1e-9
        assert 199 / (times[-1] - times[0]) >= 10 * floor
        assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 10


@pytest.mark.parametrize("burst", [1.0, 1.1, 3.0])
def test_margin_covers_send_to_arrival_jitter_and_zero_margin_does_not(burst):
    """The vendor counts ARRIVALS in fixed 1 s windows. With delays varying by up to 20 ms, a limiter
    window stretched by 20 ms keeps every fixed window (any alignment) at the limit; the same limiter
    without the margin lets 11 arrivals share a window (the guard switched off fails)."""
    jitter = 0.02

    def max_arrivals(margin: float) -> int:
        clock = FakeClock()
        lim = SlidingWindowLimiter(10, 1.0 + margin, clock=clock, sleep=clock.sleep, burst=burst)
        rng = random.Random(3)
        arrivals = []
        for _ in range(3000):
            if rng.random() < 0.05:
                clock.now += rng.choice([0.05, 0.2])  # a client busy for a while
            arrivals.append(lim.acquire().at + rng.uniform(0, jitter))
        return max_in_any_window(arrivals, 1.0)

    assert max_arrivals(jitter) <= 10
    assert max_arrivals(0.0) > 10


def test_burst_below_one_is_a_clear_config_error(monkeypatch):
    with pytest.raises(CreatorSyncConfigError, match="burst"):
        SlidingWindowLimiter(10, 1.0, burst=0.5)
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BURST", "0")
    with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_RATE_LIMIT_BURST"):
        build_limiter("insightiq_api")
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BURST", "two")
    with pytest.raises(CreatorSyncConfigError, match=r"CREATOR_SYNC_RATE_LIMIT_BURST=.two. is invalid"):
        build_limiter("insightiq_api")


def test_quota_units_reserve_then_settle():
    clock = FakeClock()
    lim = SlidingWindowLimiter(10, 60, clock=clock, sleep=clock.sleep, pace=False)
    r1 = lim.acquire(5)
    r2 = lim.acquire(5)  # window now full by estimate
    lim.settle(r1, 2.5)
    lim.settle(r2, 2.5)  # real cost was lower: 5 units free again
    before = clock.now
    lim.acquire(5)
    assert clock.now == before  # no wait
    lim.acquire(1)  # 11 > 10: must wait for the first send to leave the window
    assert clock.now == pytest.approx(before + 60)


def test_cost_larger_than_the_limit_goes_alone_instead_of_deadlocking():
    clock = FakeClock()
    lim = SlidingWindowLimiter(10, 1, clock=clock, sleep=clock.sleep, pace=False)
    lim.acquire(1)
    lim.acquire(50)
    assert clock.now == pytest.approx(1001.0)


def test_build_limiter_local_splits_the_limit_over_pool_slots(monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", raising=False)
    monkeypatch.delenv("CREATOR_SYNC_RATE_LIMIT_MARGIN", raising=False)
    spec = rate_limit("insightiq_api")
    assert (spec.limit, spec.window, spec.slots) == (10, 1, 4)
    lim = build_limiter("insightiq_api")
    assert isinstance(lim, SlidingWindowLimiter)
    assert lim.limit == 2  # floor(10 / 4): 4 slots x 2 <= 10 in any window, whatever the phases
    assert lim.window == pytest.approx(1 + DEFAULT_MARGIN)
    assert lim.burst == DEFAULT_BURST
    assert build_limiter("insider_upsert").limit == 6250
    assert build_limiter("insider_profile").limit == 500
    assert build_limiter("insider_web_push").limit == 30


def test_build_limiter_local_spends_the_share_of_the_slots_its_task_holds(monkeypatch):
    """A task holding k of a pool's slots spends k slots' share; every split of the slots among tasks
    running at once stays within the vendor limit."""
    monkeypatch.delenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", raising=False)
    spec = rate_limit("insightiq_api")
    assert [build_limiter("insightiq_api", slots=k).limit for k in (1, 2, 3, 4)] == [2, 5, 7, 10]
    for split in ([1, 1, 1, 1], [2, 1, 1], [2, 2], [3, 1], [4]):
        assert sum(spec.share(k) for k in split) <= spec.limit, split
    with pytest.raises(ValueError, match="4 slots"):
        build_limiter("insightiq_api", slots=5)


def test_limits_come_from_the_config_dir_env(monkeypatch, tmp_path):
    pools = {
        "insightiq_api": {"slots": 2, "rate_limit": {"requests": 20, "per_seconds": 2}},
    }
    (tmp_path / "pools.json").write_text(json.dumps(pools))
    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_MARGIN", "0.1")
    lim = build_limiter("insightiq_api")
    assert lim.limit == 10 and lim.window == pytest.approx(2.2)


def test_backend_env_selects_shared_backends(monkeypatch, tmp_path):
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path}")
    lim = build_limiter("insightiq_api")
    assert isinstance(lim, SqliteLimiter) and lim.limit == 10  # the whole limit, shared
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "ftp://nope")
    with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_RATE_LIMIT_BACKEND"):
        build_limiter("insightiq_api")
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_MARGIN", "lots")
    with pytest.raises(CreatorSyncConfigError):
        build_limiter("insightiq_api")


def _sqlite_worker(directory: str, n: int, queue) -> None:
    lim = SqliteLimiter(6, 0.5, name="test-bucket", directory=directory)
    queue.put([lim.acquire().at for _ in range(n)])


def test_file_backend_is_shared_between_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_sqlite_worker, args=(str(tmp_path), 12, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    times = [t for _ in procs for t in queue.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert len(times) == 36
    assert max_in_any_window(times, 0.5) <= 6
    # 36 sends at 6 per 0.5 s need >= 2.5 s: together they used the shared budget, not 3x it
    assert max(times) - min(times) >= 2.4
    gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
    assert min(gaps) >= 0.5 / 6 - 0.005  # paced across processes too


def test_file_backend_lone_client_gets_the_whole_limit_and_settles(tmp_path):
    lim = SqliteLimiter(10, 0.5, name="lone", directory=tmp_path, pace=False)
    res = [lim.acquire() for _ in range(10)]
    assert lim.stats.waits == 0  # all 10 at once: the lone client had the whole limit
    lim.settle(res[0], 0)
    lim.acquire()
    assert lim.stats.waits == 0 and lim.stats.acquired == 11  # a settled-to-zero send freed a slot


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # pragma: no cover - environment dependent
        require(f"Redis at 127.0.0.1:6379 unreachable ({exc})", "the Redis limiter test")
    return url


def _redis_worker(url: str, name: str, n: int, queue) -> None:
    lim = RedisLimiter(6, 0.5, name=name, url=url)
    queue.put([lim.acquire().at for _ in range(n)])


def test_redis_backend_is_shared_between_processes(redis_url):
    name = f"test-{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_redis_worker, args=(redis_url, name, 12, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    times = [t for _ in procs for t in queue.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert len(times) == 36
    assert max_in_any_window(times, 0.5) <= 6  # Redis server clock: one time base for all
    assert max(times) - min(times) >= 2.4
    gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
    assert min(gaps) >= 0.5 / 6 - 0.005


def test_redis_backend_settles_quota_units(redis_url):
    lim = RedisLimiter(10, 2, name=f"test-{uuid.uuid4().hex}", url=redis_url, pace=False)
    start = time.monotonic()
    r = lim.acquire(8)
    lim.settle(r, 1)
    lim.acquire(8)  # 1 + 8 <= 10: no wait
    assert lim.stats.waits == 0
    lim.acquire(2)  # 11 > 10: waits until the first send leaves the 2 s window
    assert time.monotonic() - start >= 1.9


# -- one decision rule: window.decide and its Lua copy answer alike ------------------------------------------

_LUA_DECIDE_CALL = (
    DECIDE_LUA
    + """
local sends = cjson.decode(ARGV[1])
local ats, costs = {}, {}
for i, s in ipairs(sends) do ats[i] = s[1]; costs[i] = s[2] end
local wait = decide(ats, costs, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
                    tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7]))
return string.format('%.17g', wait)
"""
)


def _decision_sequence(seed: int, pace: bool, costs: list[float], burst: float = 1.0):
    """Drive a window with bursts, gaps and mixed costs; yield every (sends, now, cost, python answer)."""
    rng = random.Random(seed)
    limit, window = 10.0, 1.03
    now, sends = 1000.0, []
    for _ in range(400):
        now += rng.choice([0.0, 0.0, 0.001, 0.02, 0.05, 0.3, 1.1])
        cost = rng.choice(costs)
        wait = decide(sends, now, cost, limit=limit, window=window, pace=pace, burst=burst)
        yield list(sends), now, cost, limit, window, wait
        if wait == 0.0:
            sends.append((now, cost))
            if rng.random() < 0.2:  # a settled quota: the real cost differs from the estimate
                sends[-1] = (now, rng.choice(costs))
        elif rng.random() < 0.5:
            now += wait  # the caller slept as told


@pytest.mark.parametrize(("pace", "burst"), [(True, 1.0), (True, 1.1), (True, 3.0), (False, 1.0)])
@pytest.mark.parametrize("costs", [[1.0], [0.5, 1.0, 3.0, 12.0]], ids=["requests", "quota-units"])
def test_redis_lua_decides_like_the_python_window(redis_url, pace, burst, costs):
    import redis

    script = redis.Redis.from_url(redis_url).register_script(_LUA_DECIDE_CALL)
    answers = {"go": 0, "wait": 0}
    for sends, now, cost, limit, window, wait in _decision_sequence(7, pace, costs, burst):
        flag = "1" if pace else "0"
        args = [json.dumps(sends), repr(now), repr(cost), repr(limit), repr(window), flag, repr(burst)]
        lua_wait = float(script(keys=[], args=args))
        assert (lua_wait == 0.0) == (wait == 0.0), (sends, now, cost, wait, lua_wait)
        assert lua_wait == pytest.approx(wait, rel=1e-12, abs=1e-12)
        answers["go" if wait == 0.0 else "wait"] += 1
    # the sequence exercises both answers (and, with pacing, the spacing rule)
    assert answers["go"] > 20 and answers["wait"] > 20


def test_window_decision_is_what_every_backend_records():
    """A fake clock: the local backend sends exactly when decide() says 0 and waits what it says."""
    clock = FakeClock()
    lim = SlidingWindowLimiter(4, 1.0, clock=clock, sleep=clock.sleep)
    sends: list[tuple[float, float]] = []
    for _ in range(40):
        before = clock.now
        expected_wait = decide(sends, before, 1.0, limit=4, window=1.0)
        res = lim.acquire()
        assert res.at == pytest.approx(before + expected_wait) if expected_wait else res.at == before
        sends.append((res.at, 1.0))
