"""The sandbox limiter counts every arriving request before it decides, so a client that sends into a
full window shows up (attempted > limit) even though the excess is rejected."""

from __future__ import annotations

from devtools.sandbox.faults import FaultInjector
from devtools.sandbox.limits import FixedWindowLimiter


def test_rejected_requests_count_as_attempted_so_a_full_window_is_visible():
    lim = FixedWindowLimiter("upsert", rate=3, window=60)
    answers = [lim.acquire("mybrand", now=120.0 + i) for i in range(5)]
    assert answers[:3] == [None] * 3 and all(a is not None and a >= 1 for a in answers[3:])
    stats = lim.stats()
    assert stats["max_in_window"] == 3 and stats["windows_over_limit"] == 0  # accepted: cannot exceed
    assert stats["attempted_max_in_window"] == 5 and stats["attempted_windows_over_limit"] == 1
    assert stats["rejected"] == 2


def test_a_client_that_respects_the_limit_keeps_attempted_within_it_across_windows():
    lim = FixedWindowLimiter("requests", rate=3, window=1)
    for window in range(4):
        for i in range(3):
            assert lim.acquire("c", now=window + i * 0.3) is None
    stats = lim.stats()
    assert stats["attempted_max_in_window"] == 3 and stats["attempted_windows_over_limit"] == 0
    lim.reset()
    assert lim.stats()["attempted_max_in_window"] == 0


def test_each_over_limit_window_is_counted_once_and_costs_are_units():
    lim = FixedWindowLimiter("profile_quota", rate=2, window=10)
    for now in (0, 1, 2, 3, 15, 16):  # window 0: 4 arrivals, window 1: 2
        lim.acquire("p", cost=1.0, now=now)
    lim.acquire("p", cost=1.5, now=17)  # window 1: 3.5 units arrived
    stats = lim.stats()
    assert stats["attempted_windows_over_limit"] == 2 and stats["attempted_max_in_window"] == 4


def test_an_unknown_fault_kind_is_refused():
    import pytest

    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultInjector(1, "insider", {"drop-after": 0.1})


def test_limit_violations_names_real_429s_and_over_full_windows_but_not_injected_429s():
    from devtools.sandbox.inspection import limit_violations

    lim = FixedWindowLimiter("requests", rate=2, window=1)
    ok = {
        "service": "insightiq",
        "rate_limited_429s": 0,
        "injected_429s": 7,
        "limits": {"requests": lim.stats()},
    }
    assert limit_violations(ok) == []
    for now in (0.1, 0.2, 0.3):
        lim.acquire("c", now=now)
    bad = {"service": "insightiq", "rate_limited_429s": 1, "limits": {"requests": lim.stats()}}
    problems = limit_violations(bad)
    assert problems == [
        "insightiq: 1 real rate-limit 429(s)",
        "insightiq: 3 requests unit(s) arrived in one 1s window (limit 2; 1 window(s) over)",
    ]
