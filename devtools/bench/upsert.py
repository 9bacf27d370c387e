"""Insider upsert batching: synthetic valid users through the sender (devtools.insider_load), requests
counted by the sandbox (its `upsert_requests`), against the fewest possible, ceil(users / 1000)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from devtools.bench.results import upsert_ratio


def synthetic_users(n: int) -> Iterator[dict[str, Any]]:
    """Valid Insider users shaped like the sync's output: identifiers, attributes and one event."""
    for i in range(n):
        yield {
            "identifiers": {"uuid": f"bench-{i:07d}", "email": f"creator{i}@example.com"},
            "attributes": {
                "name": f"Creator {i}",
                "email_optin": True,
                "custom": {"follower_count": i * 7 % 100_000, "platform": "Instagram"},
            },
            "events": [
                {
                    "event_name": "content_published",
                    "timestamp": "2024-05-01T12:00:00Z",
                    "event_params": {"custom": {"content_id": f"c-{i}", "like_count": i % 500}},
                }
            ],
        }


def run_upsert(sandbox, users: int) -> dict[str, Any]:
    from creator_sync.hooks.insider import InsiderHook

    os.environ["CREATOR_SYNC_RATE_LIMIT_BACKEND"] = "local"
    sandbox.reset("insider")
    hook = InsiderHook()
    began = time.perf_counter()
    from devtools.insider_load import upsert_all

    summary, _ = upsert_all(hook, synthetic_users(users))
    elapsed = time.perf_counter() - began
    stats = sandbox.stats("insider")
    hook.close()
    requests = int(stats["upsert_requests"])
    return {
        "users": users,
        "requests": requests,
        "client_requests": summary.requests,
        "accepted": summary.users_sent,
        "failed": summary.rejected.get("vendor_rejected", 0),
        "users_stored": int(stats.get("users_stored") or 0),
        "seconds": elapsed,
        "ratio": upsert_ratio(requests, users),
    }
