"""InsightIQ paging throughput: our hooks (4 concurrent clients, shared or split budget) vs the HttpHook
baseline (one sequential paging loop with tenacity retries on 429), against one sandbox at the same limit.

The job: every page (limit 100) of /v1/social/contents for the sandbox's creators, no date filter.
Utilisation = accepted (HTTP 200) requests per second over the job's wall time / the vendor limit.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from typing import Any

from devtools.bench.results import utilisation
from devtools.sandbox.inspection import limit_violations

PAGE = 100
CONTENTS = "/v1/social/contents"
BASELINE_CONN_ID = "bench_insightiq_http"


def sandbox_summary(stats: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's limit evidence: windows over the limit and the max per window count what ARRIVED
    (accepted or rejected), and 429s are the real limit rejections (injected 429 faults apart), so a client
    that sends into a full window shows up (see devtools.sandbox.inspection.limit_violations)."""
    by_status = {str(k): int(v) for k, v in (stats.get("requests_by_status") or {}).items()}
    requests = (stats.get("limits") or {}).get("requests", {})
    return {
        "accepted": by_status.get("200", 0),
        "by_status": by_status,
        "windows_over_limit": int(stats.get("attempted_windows_over_limit") or 0),
        "rate_limited_429s": int(stats.get("rate_limited_429s") or 0),
        "max_in_window": requests.get("attempted_max_in_window"),
        "requests_into_full_window": int(requests.get("attempted_over_limit") or 0),
        "max_in_any_window": requests.get("attempted_max_in_sliding_window"),
        "send_to_arrival_ms": stats.get("send_to_arrival_ms") or {},
        "limit_violations": limit_violations(stats),
    }


def pages_for(total_items: int) -> int:
    """Pages a limit/offset pager requests: a full last page needs one more (empty) page to stop."""
    return total_items // PAGE + 1


SENT_AT_HEADER = "X-Sandbox-Sent-At"


def mark_sends(hook) -> None:
    """Bench instrumentation: every request carries its limiter reservation time (``Reservation.at``) in
    ``X-Sandbox-Sent-At`` so the sandbox records the send-to-arrival delay (``send_to_arrival_ms``). Only
    for shared backends: their reservation clock is the wall clock the sandbox counts with (file://) or the
    Redis server's (same machine here); the local backend's is monotonic."""
    client = hook.client
    last: dict[str, float] = {}
    for lim in client.limiters.values():
        acquire = lim.acquire

        def marked(cost: float = 1.0, _acquire=acquire):
            reservation = _acquire(cost)
            last["at"] = reservation.at
            return reservation

        lim.acquire = marked

    def stamp(request) -> None:
        if "at" in last:
            request.headers[SENT_AT_HEADER] = repr(last["at"])

    client._http.event_hooks["request"].append(stamp)


def run_hooks(sandbox, backend: str, *, slots: int = 4, limit_per_s: float = 10.0) -> dict[str, Any]:
    """All contents pages sharded in page blocks over ``slots`` concurrent InsightIQHooks (one thread each,
    each with its own client and limiter, as ``slots`` task processes would have). With a shared backend
    each send is marked (``mark_sends``), so the result carries the measured send-to-arrival delays."""
    from creator_sync.hooks.insightiq import InsightIQHook

    os.environ["CREATOR_SYNC_RATE_LIMIT_BACKEND"] = backend
    total = sandbox.stats("insightiq")["items"]["contents"]
    per_client = math.ceil(pages_for(total) / slots)
    hooks = [InsightIQHook() for _ in range(slots)]
    for hook in hooks:
        hook.client  # noqa: B018 - connection + limiter built before the clock starts
        if not backend.startswith("local"):
            mark_sends(hook)
    counts = [0] * slots
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for _ in hooks[k].iter_records(
                "contents", start_offset=k * per_client * PAGE, max_pages=per_client
            ):
                counts[k] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    sandbox.reset("insightiq")
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(slots)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    vendor = sandbox_summary(sandbox.stats("insightiq"))
    client_requests = sum(h.stats.get("requests", 0) for h in hooks)
    for hook in hooks:
        hook.close()
    if sum(counts) != total:
        raise RuntimeError(f"fetched {sum(counts)} contents, sandbox has {total}")
    return {
        "backend": backend.split(":", 1)[0],
        "items": total,
        "seconds": elapsed,
        "client_requests": client_requests,
        "utilisation": utilisation(vendor["accepted"], elapsed, limit_per_s),
        **vendor,
    }


def baseline_conn_env(insightiq_url: str) -> dict[str, str]:
    """An `http` connection for HttpHook: host = sandbox URL, Basic auth from config/connections.json."""
    from devtools.connections import connections_file_entries

    entry = connections_file_entries()["insightiq_default"]
    value = {
        "conn_type": "http",
        "host": insightiq_url,
        "login": entry["login"],
        "password": entry["password"],
    }
    return {f"AIRFLOW_CONN_{BASELINE_CONN_ID.upper()}": json.dumps(value)}


class RateLimited(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"429 (Retry-After {retry_after})")
        self.retry_after = retry_after


def run_baseline(sandbox, *, limit_per_s: float = 10.0, max_attempts: int = 10) -> dict[str, Any]:
    """What a user would write without this project: HttpHook.run() in a sequential offset loop, 429s
    retried with tenacity (wait Retry-After when given, else exponential backoff 0.5 s .. 30 s)."""
    import tenacity
    from airflow.providers.http.hooks.http import HttpHook

    os.environ.update(baseline_conn_env(sandbox.insightiq_url))
    hook = HttpHook(method="GET", http_conn_id=BASELINE_CONN_ID)
    backoff = tenacity.wait_exponential(multiplier=0.5, max=30)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return backoff(state)

    @tenacity.retry(
        retry=tenacity.retry_if_exception_type(RateLimited),
        wait=wait,
        stop=tenacity.stop_after_attempt(max_attempts),
        reraise=True,
    )
    def page(offset: int) -> list[dict[str, Any]]:
        response = hook.run(
            CONTENTS, data={"limit": PAGE, "offset": offset}, extra_options={"check_response": False}
        )
        if response.status_code == 429:
            raw = response.headers.get("Retry-After")
            raise RateLimited(float(raw) if raw else None)
        hook.check_response(response)
        return response.json()["data"]

    total = sandbox.stats("insightiq")["items"]["contents"]
    hook.get_conn()  # session + connection before the clock starts
    sandbox.reset("insightiq")
    fetched, offset = 0, 0
    began = time.perf_counter()
    while True:
        data = page(offset)
        fetched += len(data)
        offset += len(data)
        if len(data) < PAGE:
            break
    elapsed = time.perf_counter() - began
    vendor = sandbox_summary(sandbox.stats("insightiq"))
    if fetched != total:
        raise RuntimeError(f"baseline fetched {fetched} contents, sandbox has {total}")
    return {
        "backend": "httphook",
        "items": total,
        "seconds": elapsed,
        "utilisation": utilisation(vendor["accepted"], elapsed, limit_per_s),
        **vendor,
    }
