"""The limit evidence can fail: the same traffic with and without the client limiter.

Four concurrent InsightIQ hooks (one per insightiq_api pool slot) read 40 pages. With the client limiter
the sandbox sees no real 429 and never more than 10 arriving requests per 1 s window. With the limiter
switched off (the test gives the hooks unlimited limiters in place of the pool's) the same traffic
arrives faster than the limit, and the same check (devtools.sandbox.inspection.limit_violations, used by
the e2e, Celery and bench checks) fails, even though the client's retries still fetch every record.
"""

from __future__ import annotations

import threading

import pytest

from creator_sync.hooks import insightiq
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.http.limiter import UnlimitedLimiter
from devtools.sandbox.inspection import limit_violations

pytestmark = pytest.mark.slow
SLOTS, PAGES_EACH = 4, 10


def read_pages(sandbox) -> tuple[int, list[InsightIQHook]]:
    hooks = [InsightIQHook() for _ in range(SLOTS)]
    records = [0] * SLOTS
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for _ in hooks[k].iter_records(
                "contents", start_offset=k * PAGES_EACH * 100, max_pages=PAGES_EACH
            ):
                records[k] += 1
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    for h in hooks:
        h.client  # noqa: B018 - build the clients (and their limiters) before the traffic starts
    sandbox.reset("insightiq")
    threads = [threading.Thread(target=run, args=(k,)) for k in range(SLOTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return sum(records), hooks


def test_with_the_client_limiter_the_evidence_is_clean(sandbox_env):
    records, hooks = read_pages(sandbox_env)
    stats = sandbox_env.stats("insightiq")
    assert records == SLOTS * PAGES_EACH * 100
    assert limit_violations(stats) == [], stats
    assert sum(h.stats["rate_limited_429"] for h in hooks) == 0
    assert stats["attempted_max_in_window"]["requests"] <= 10


def test_without_the_client_limiter_the_same_evidence_fails(sandbox_env, monkeypatch):
    monkeypatch.setattr(insightiq, "build_limiter", lambda pool, **_: UnlimitedLimiter(pool))
    records, hooks = read_pages(sandbox_env)
    stats = sandbox_env.stats("insightiq")
    assert records == SLOTS * PAGES_EACH * 100  # retries hid it from the data...
    problems = limit_violations(stats)
    assert problems, stats  # ...but not from the evidence
    assert stats["attempted_max_in_window"]["requests"] > 10, stats
    assert stats["attempted_windows_over_limit"] >= 1, stats
    # the client saw exactly the 429s the sandbox counts (no injected ones here)
    assert sum(h.stats["rate_limited_429"] for h in hooks) == stats["rate_limited_429s"]
