"""Request guards of the view beyond Airflow's login: cross-site request forgery and framing.

* ``same_origin``: a state-changing request must come from a page of this Airflow. Browsers say where a
  request comes from: ``Sec-Fetch-Site`` (``same-origin``, or ``none`` for one the user typed) and
  ``Origin`` (compared with the request's own host and with Airflow's ``[api] base_url``). A request with
  neither header is not a browser form post: it is accepted only when it carries its own
  ``Authorization`` header (a cross-site page cannot set one). Everything else is 403.
* ``SECURITY_HEADERS`` on every response: the pages may be framed only by Airflow itself (the "Creator
  sync" and "Sync report" iframes are same-origin) and are never content-sniffed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException, Request

SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def configured_origin() -> str | None:
    """The origin of Airflow's ``[api] base_url`` (the address users reach Airflow at), if set."""
    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # outside Airflow: only the request's own host counts
        return None
    return _origin(base_url)


def is_same_origin(request: Request, configured: str | None) -> bool:
    """The Origin / Sec-Fetch-Site decision; see the module docstring."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() in ALLOWED_FETCH_SITES
    origin = request.headers.get("origin")
    if origin is None:
        return bool(request.headers.get("authorization"))
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower(), configured}
    forwarded_host = request.headers.get("x-forwarded-host")
    if forwarded_host:
        scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
        own.add(f"{scheme}://{forwarded_host}".lower())
    return _origin(origin) in own - {None}


def same_origin(request: Request) -> None:
    """FastAPI dependency: 403 for a state-changing request from another site."""
    if not is_same_origin(request, configured_origin()):
        raise HTTPException(403, "cross-site request refused: post from the Creator sync page itself")


async def add_security_headers(request: Request, call_next):
    """HTTP middleware: ``SECURITY_HEADERS`` on every response, refusals included."""
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
