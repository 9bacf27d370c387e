"""The one HTTP core shared by every hook."""

from creator_sync.http.client import ClientStats, RequestOptions, RetrySettings, VendorClient, VendorResponse
from creator_sync.http.errors import (
    AmbiguousOutcomeError,
    CreatorSyncConfigError,
    CreatorSyncError,
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
    WebPushTitleExistsError,
)
from creator_sync.http.limiter import build_limiter
from creator_sync.http.paging import iter_offset, iter_offset_pages

__all__ = [
    "AmbiguousOutcomeError",
    "ClientStats",
    "CreatorSyncConfigError",
    "CreatorSyncError",
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
    "WebPushTitleExistsError",
    "build_limiter",
    "iter_offset",
    "iter_offset_pages",
]
