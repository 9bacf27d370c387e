"""The one HTTP core shared by every hook."""

from creator_sync.http.client import ClientStats, RequestOptions, RetrySettings, VendorClient, VendorResponse
from creator_sync.http.errors import (
    AmbiguousOutcomeError,
    MalformedPageError,
    VendorAuthError,
    VendorBadRequestError,
    VendorError,
    VendorNotFoundError,
    VendorPermanentError,
    VendorRateLimitError,
    VendorResponseError,
    VendorServerError,
    VendorTransientError,
    VendorTransportError,
)
from creator_sync.http.limiter import build_limiter
from creator_sync.http.paging import iter_offset, iter_offset_pages

__all__ = [
    "AmbiguousOutcomeError",
    "ClientStats",
    "MalformedPageError",
    "RequestOptions",
    "RetrySettings",
    "VendorAuthError",
    "VendorBadRequestError",
    "VendorClient",
    "VendorError",
    "VendorNotFoundError",
    "VendorPermanentError",
    "VendorRateLimitError",
    "VendorResponse",
    "VendorResponseError",
    "VendorServerError",
    "VendorTransientError",
    "VendorTransportError",
    "build_limiter",
    "iter_offset",
    "iter_offset_pages",
]
