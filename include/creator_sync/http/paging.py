"""Limit/offset paging (InsightIQ lists: ``{"data": [...], "metadata": {...}}``, no total count)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from creator_sync.http.errors import MalformedPageError

DEFAULT_PAGE_LIMIT = 100


def page_records(client, path: str, body: Any, offset: int) -> list[Any]:
    """The records of one list page: the list under ``data``. A page without that list (no ``data`` key,
    ``data: null``, not a list, or a body that is not an object) raises ``MalformedPageError`` naming the
    endpoint and offset: ending the list there would silently drop every later record."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return body["data"]
    if not isinstance(body, dict):
        what = f"a JSON {type(body).__name__} instead of an object"
    elif "data" not in body:
        what = f"no 'data' key (keys: {', '.join(sorted(map(str, body))) or 'none'})"
    elif body["data"] is None:
        what = "'data': null"
    else:
        what = f"'data' is a {type(body['data']).__name__}, not a list"
    raise MalformedPageError(
        f"{client.vendor} GET {path} at offset {offset}: malformed list page: {what}. Paging stops here "
        "instead of ending the list early; retry the task later, and report it to the vendor if it persists",
        offset=offset,
        vendor=client.vendor,
        method="GET",
        path=path,
        conn_id=client.conn_id,
    )


def iter_offset_pages(
    fetch: Callable[[int, int], list[Any]],
    *,
    limit: int = DEFAULT_PAGE_LIMIT,
    offset: int = 0,
    max_pages: int | None = None,
    page_stride: int = 1,
) -> Iterator[list[Any]]:
    """Yield pages from ``fetch(offset, limit)`` until a short (or empty) page.

    ``page_stride`` n > 1 reads every n-th page only (offsets offset, offset + n*limit, ...): n readers
    starting at pages 0..n-1 split one list between them without a request in common.
    """
    if page_stride < 1:
        raise ValueError("page_stride must be >= 1")
    pages = 0
    while True:
        page = fetch(offset, limit)
        if page:
            yield page
        pages += 1
        if len(page) < limit or (max_pages is not None and pages >= max_pages):
            return
        offset += limit * page_stride


def iter_offset(
    client,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_PAGE_LIMIT,
    offset: int = 0,
    max_pages: int | None = None,
    page_stride: int = 1,
) -> Iterator[dict[str, Any]]:
    """Every record of a limit/offset list endpoint, page by page (``client`` is a VendorClient)."""
    base = dict(params or {})

    def fetch(off: int, lim: int) -> list[Any]:
        return page_records(client, path, client.get(path, params={**base, "limit": lim, "offset": off}), off)

    pages = iter_offset_pages(fetch, limit=limit, offset=offset, max_pages=max_pages, page_stride=page_stride)
    from creator_sync.progress import Progress, client_requests

    progress = Progress(f"{client.vendor} GET {path}", unit="pages", gauges=client_requests(client))
    for page in pages:
        progress.advance(1, records=len(page))
        yield from page
    progress.done()
