"""Exceptions raised by the HTTP core. Messages never contain credentials.

Two families decide what an Airflow retry can do:
- ``VendorPermanentError``: a retry cannot fix it (auth, validation, not found, a vendor's refusal).
- ``VendorTransientError``: the client already retried and gave up (5xx, 429, timeouts, bad JSON);
  an Airflow retry later may succeed.

``AmbiguousOutcomeError`` (transient) is raised at once, without a retry, when a non-idempotent request may
have been processed but its answer was lost: the caller must find out what arrived before sending again.
"""

from __future__ import annotations

from creator_sync.errors import CreatorSyncError


class VendorError(CreatorSyncError):
    """An error talking to a vendor API."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        method: str,
        path: str,
        status: int | None = None,
        vendor_message: str | None = None,
        conn_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.method = method
        self.path = path
        self.status = status
        self.vendor_message = vendor_message
        self.conn_id = conn_id

    def recast(self, cls: type[VendorError], message: str) -> VendorError:
        """The same failed call (vendor, method, path, status, vendor message, conn id) as a ``cls`` error
        with ``message``: for callers that know more about what the failure means."""
        return cls(message, **VendorError._init_kwargs(self))

    def _init_kwargs(self) -> dict:
        return {
            "vendor": self.vendor,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "vendor_message": self.vendor_message,
            "conn_id": self.conn_id,
        }

    def __reduce__(self):  # keep keyword-only args picklable
        return (_rebuild, (type(self), str(self), self._init_kwargs()))


def _rebuild(cls, message, kwargs):
    return cls(message, **kwargs)


class VendorPermanentError(VendorError):
    """A retry cannot fix this (fail the task at once)."""


class VendorTransientError(VendorError):
    """Retrying later may succeed."""

    retryable = True


class VendorBadRequestError(VendorPermanentError):
    """HTTP 400 / other 4xx: the request itself is wrong."""


class VendorAuthError(VendorPermanentError):
    """HTTP 401 / 403: credentials rejected; the message names the Airflow connection to fix."""


class VendorNotFoundError(VendorPermanentError):
    """HTTP 404."""


class VendorServerError(VendorTransientError):
    """HTTP 5xx (or 424) after the client's own retries."""


class VendorRateLimitError(VendorTransientError):
    """HTTP 429 after the client's own bounded retries."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _init_kwargs(self) -> dict:
        return {**super()._init_kwargs(), "retry_after": self.retry_after}


class VendorTransportError(VendorTransientError):
    """Timeout, refused or dropped connection after the client's own retries."""


class VendorResponseError(VendorTransientError):
    """A success status with a body that is not the JSON the API documents."""


class AmbiguousOutcomeError(VendorTransientError):
    """A non-idempotent request may have been processed, but its answer was lost (2xx with an unreadable
    body, connection dropped after the request was written, read timeout, a 5xx the vendor does not document
    as unprocessed). The client never re-sends it; the caller checks what arrived (the upsert path: in-flight
    marker + Profile API probe) before sending again. ``outcome`` names what happened (no secrets)."""

    def __init__(self, message: str, *, outcome: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.outcome = outcome

    def _init_kwargs(self) -> dict:
        return {**super()._init_kwargs(), "outcome": self.outcome}


class MalformedPageError(VendorResponseError):
    """A list page without a list under ``data``: paging cannot tell where the list ends, so it stops loudly
    instead of treating the page as the end of the list."""

    def __init__(self, message: str, *, offset: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.offset = offset

    def _init_kwargs(self) -> dict:
        return {**super()._init_kwargs(), "offset": self.offset}
