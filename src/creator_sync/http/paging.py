"""Limit/offset paging (InsightIQ lists: ``{"data": [...], "metadata": {...}}``, no total count)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

DEFAULT_PAGE_LIMIT = 100


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
        body = client.get(path, params={**base, "limit": lim, "offset": off})
        data = body.get("data") if isinstance(body, dict) else body
        if data is None:
            return []
        if not isinstance(data, list):
            from creator_sync.http.errors import VendorResponseError

            raise VendorResponseError(
                f"{client.vendor} GET {path}: expected a list under 'data', got {type(data).__name__}",
                vendor=client.vendor,
                method="GET",
                path=path,
                conn_id=client.conn_id,
            )
        return data

    pages = iter_offset_pages(fetch, limit=limit, offset=offset, max_pages=max_pages, page_stride=page_stride)
    from creator_sync.progress import Progress, client_requests

    progress = Progress(f"{client.vendor} GET {path}", unit="pages", gauges=client_requests(client))
    for page in pages:
        progress.advance(1, records=len(page))
        yield from page
    progress.done()
