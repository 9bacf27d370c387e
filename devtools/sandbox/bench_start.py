"""``python -m devtools.sandbox.bench_start --creators 100000``: seconds from process launch until the first
InsightIQ page (GET /v1/social/contents, then /v1/profiles) is served, plus the server's peak RSS."""

from __future__ import annotations

import argparse
import json
import time

import httpx

from devtools.sandbox.launcher import SandboxServers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--creators", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    started = time.perf_counter()
    with SandboxServers(creators=args.creators, seed=args.seed) as sb:
        listening = time.perf_counter() - started
        auth = ("sandbox-client-id", "sandbox-client-secret")
        first = httpx.get(
            f"{sb.insightiq_url}/v1/social/contents", params={"limit": 100}, auth=auth, timeout=60
        )
        first_page = time.perf_counter() - started
        first.raise_for_status()
        profiles = httpx.get(f"{sb.insightiq_url}/v1/profiles", params={"limit": 100}, auth=auth, timeout=60)
        profiles.raise_for_status()
        rss_kb = _rss_kb(sb.pid)
        stats = sb.stats("insightiq")
    print(
        json.dumps(
            {
                "creators": args.creators,
                "seconds_to_listening": round(listening, 2),
                "seconds_to_first_page": round(first_page, 2),
                "server_rss_mb": round(rss_kb / 1024, 1),
                "content_items": stats["items"]["contents"],
                "accounts": stats["accounts"],
            }
        )
    )


def _rss_kb(pid: int | None) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


if __name__ == "__main__":
    main()
