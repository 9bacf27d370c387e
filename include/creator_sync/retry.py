"""Airflow retry policy for vendor errors: fail at once on what a retry cannot fix.

Every creator-sync DAG gets ``VENDOR_RETRY_POLICY`` and ``DEFAULT_RETRY_ARGS`` through
``creator_sync.dag_defaults.DEFAULT_ARGS``; the creator-sync operators use them by default.
``$CREATOR_SYNC_RETRY_DELAY_S`` (default 30) sets the first retry delay (tests and demos shorten it).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.errors import VendorPermanentError, VendorRateLimitError, VendorTransientError

VENDOR_RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[VendorPermanentError, CreatorSyncConfigError],
            action=RetryAction.FAIL,
            reason="Not retryable: auth, validation, not found, existing title or bad configuration",
        ),
        RetryRule(
            exception=VendorRateLimitError,
            action=RetryAction.RETRY,
            retry_delay=timedelta(minutes=1),
            reason="Vendor rate limit persisted through the client's own retries; retry in a minute",
        ),
        RetryRule(
            exception=VendorTransientError,
            action=RetryAction.RETRY,
            reason="Transient vendor error (5xx, timeout, dropped connection, malformed body)",
        ),
    ],
    default=RetryAction.DEFAULT,
)

RETRY_DELAY_ENV = "CREATOR_SYNC_RETRY_DELAY_S"


def _retry_delay() -> timedelta:
    from creator_sync import settings

    return timedelta(seconds=settings.current().retry_delay_s)


# Operator defaults for transient errors (Airflow retries with exponential backoff).
DEFAULT_RETRY_ARGS = {
    "retries": 3,
    "retry_delay": _retry_delay(),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}
