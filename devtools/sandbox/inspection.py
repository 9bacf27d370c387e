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
