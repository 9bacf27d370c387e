"""The /_sandbox/* inspection API shared by all sandboxes (no auth, never limited, never faulted)."""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from devtools.sandbox.service import Service


def inspection_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.get("/stats")
    def stats() -> dict:
        return service.stats()

    @router.post("/reset")
    def reset() -> dict:
        service.reset()
        return {"reset": True}

    @router.get("/config")
    def get_config() -> dict:
        return service.config()

    @router.post("/config")
    def set_config(values: dict = Body(...)):  # noqa: B008
        try:
            service.configure(values)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return service.config()

    return router


def limit_violations(stats: dict) -> list[str]:
    """What in one service's /_sandbox/stats shows a client breaking the vendor limits (empty: none).

    Counts REAL limit rejections (``rate_limited_429s``; injected 429 faults are in ``injected_429s`` and
    do not count) and, per limit, the units that ARRIVED in any one window (``attempted_*``: counted before
    the sandbox decides, so a client that sends into a full window shows up even when the excess is
    rejected). Every e2e / Celery / bench check of the limits uses this one rule.
    """
    service = stats.get("service", "?")
    problems = []
    if stats.get("rate_limited_429s", 0):
        problems.append(f"{service}: {stats['rate_limited_429s']} real rate-limit 429(s)")
    for name, limit in (stats.get("limits") or {}).items():
        arrived = limit.get("attempted_max_in_window", 0)
        if arrived > limit["rate"] or limit.get("attempted_windows_over_limit", 0):
            problems.append(
                f"{service}: {arrived} {name} unit(s) arrived in one {limit['window']:g}s window "
                f"(limit {limit['rate']:g}; {limit.get('attempted_windows_over_limit', 0)} window(s) over)"
            )
    return problems
