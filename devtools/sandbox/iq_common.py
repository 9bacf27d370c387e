"""InsightIQ request helpers: JSON error bodies, paging and date parameters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

from fastapi import Request
from fastapi.responses import JSONResponse, Response

DEFAULT_LIMIT, MAX_LIMIT = 10, 100


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    body = {
        "error": {
            "type": "invalid_request_error" if status < 500 else "api_error",
            "code": code,
            "error_code": code,
            "message": message,
            "status_code": status,
            "http_status_code": status,
            "request_id": uuid.uuid4().hex,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def not_found(what: str, value: str) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what.replace('_', ' ')} with id {value!r} not found")


def required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(400, "missing_parameter", f"query parameter '{name}' is required")
    return value


def paging(request: Request) -> tuple[int, int]:
    q = request.query_params
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
        offset = int(q.get("offset", 0))
    except ValueError:
        raise ApiError(400, "invalid_parameter", "limit and offset must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise ApiError(400, "invalid_offset", f"offset must be >= 0, got {offset}")
    return offset, limit


def parse_date(name: str, value: str | None, end: bool) -> int | None:
    """YYYY-MM-DD (a to-date includes that whole day) or an ISO datetime (naive = UTC) -> epoch seconds."""
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            moment = datetime.combine(d + timedelta(days=1) if end else d, time(), UTC)
            return int(moment.timestamp()) - (1 if end else 0)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "invalid_date", f"{name} must be YYYY-MM-DD or an ISO 8601 datetime: {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def encoded(body: dict) -> Response:
    """A JSON body encoded where this is called. A sync endpoint that returns it encodes in the worker
    thread; returning the dict would run FastAPI's jsonable_encoder on the event loop (~20 ms for a
    page of 100 contents), delaying the arrival (and rate-limit count) of every request behind it, which
    a vendor's rate-limit edge does not do."""
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")


def envelope(data: list, offset: int, limit: int, from_date=None, to_date=None) -> dict:
    return {
        "data": data,
        "metadata": {"offset": offset, "limit": limit, "from_date": from_date, "to_date": to_date},
    }
