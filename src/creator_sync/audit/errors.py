"""Permanent vendor errors fail the task at once (no Airflow retry); transient ones propagate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    from airflow.sdk.exceptions import AirflowFailException

    from creator_sync.http.errors import CreatorSyncConfigError, VendorPermanentError

    try:
        yield
    except (VendorPermanentError, CreatorSyncConfigError) as exc:
        raise AirflowFailException(
            f"{type(exc).__name__}: {exc} (not retried: a retry cannot fix it)"
        ) from exc
