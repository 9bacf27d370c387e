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


def test_requests_into_a_full_window_and_the_busiest_window_of_any_alignment():
    lim = FixedWindowLimiter("requests", rate=3, window=1)
    # 3 at the end of window 0, 3 at the start of window 1: each fixed window holds 3, but 6 arrived
    # within 0.2 s, which a vendor with windows aligned half a second off would have refused
    for t in (0.85, 0.9, 0.95, 1.0, 1.02, 1.05):
        assert lim.acquire("k", now=t) is None
    stats = lim.stats()
    assert stats["attempted_over_limit"] == 0 and stats["attempted_max_in_window"] == 3
    assert stats["attempted_max_in_sliding_window"] == 6
    # a 4th arrival in window 1 is refused and counted as a request into a full window
    assert lim.acquire("k", now=1.5) is not None
    assert lim.acquire("k", now=1.6) is not None
    assert lim.stats()["attempted_over_limit"] == 2
    assert lim.stats()["attempted_windows_over_limit"] == 1


def test_send_to_arrival_drop_is_the_delay_decrease_over_limit_sends():
    from devtools.sandbox.service import delay_summary

    # (sent, delay): send 1 is delayed 30 ms, send 3 (two sends later) only 2 ms -> drop 28 ms
    pairs = [(0.0, 0.001), (0.1, 0.030), (0.2, 0.004), (0.3, 0.002), (0.4, 0.003)]
    summary = delay_summary(pairs, sends_per_window=2)
    assert summary["drop"] == 28.0
    assert summary["spread"] == 29.0 and summary["max"] == 30.0 and summary["count"] == 5
    # steady delays: no drop, whatever their size
    assert delay_summary([(i / 10, 0.05) for i in range(20)], 10)["drop"] == 0.0
    assert delay_summary([], 10) == {"count": 0}
