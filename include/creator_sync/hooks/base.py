"""Shared hook plumbing: connection -> cached VendorClient, secret masking, test_connection.

Connection extras every creator-sync connection may set (provider.py documents them as form fields):
``timeout`` (seconds per request attempt) and ``retries`` (client retries after the first attempt of an
idempotent request). Arguments passed to the hook win over the extras.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any

import httpx
from airflow.sdk.bases.hook import BaseHook

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.http.errors import VendorError, VendorTransientError

# A non-idempotent call that failed with one of these may still have been processed by the vendor (the
# answer was lost: timeout, dropped connection, 5xx, malformed body; or refused: 429/503/connect error,
# which a look-up also settles). Hooks look the object up before creating it again.
MAY_HAVE_BEEN_PROCESSED: tuple[type[Exception], ...] = (VendorTransientError,)

TIMEOUT_EXTRA = "timeout"
RETRIES_EXTRA = "retries"


def mask(*values: Any) -> None:
    """Register secrets with Airflow's secrets masker (task process and supervisor)."""
    for value in values:
        if value:
            with contextlib.suppress(Exception):
                from airflow.sdk.log import mask_secret

                mask_secret(value)


def _extra_number(conn_id: str, extra: dict, key: str, *, integer: bool, minimum: float) -> float:
    raw = extra[key]
    try:
        value = int(raw) if integer and not isinstance(raw, float) else float(raw)
    except (TypeError, ValueError):
        value = None
    if isinstance(raw, bool) or value is None or value < minimum or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number of seconds"
        raise CreatorSyncConfigError(
            f"connection '{conn_id}': extra {key!r} must be {kind} >= {minimum:g}, got {raw!r}; "
            "fix it in the connection's Extra field (or remove it for the default)"
        )
    return value


class VendorHook(BaseHook):
    """Base of the creator-sync hooks: one cached ``VendorClient`` per hook instance.

    The connection id is the first argument or the hook's own keyword (``insightiq_conn_id=``,
    ``insider_conn_id=``, ``insider_web_push_conn_id=``), as Airflow's provider hooks take theirs.
    ``transport``/``retry``/``limiters`` are injection points for tests and tuning; production code
    passes only the connection id.
    """

    conn_name_attr = "conn_id"
    default_conn_name = ""
    conn_type = ""
    hook_name = ""
    vendor = ""
    # Injection point for tests (e.g. an httpx.MockTransport) used when no transport is passed.
    default_transport: httpx.BaseTransport | None = None

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetrySettings | None = None,
        limiters: dict | None = None,
        timeout: float | httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> None:
        named = kwargs.pop(self.conn_name_attr, None) if self.conn_name_attr != "conn_id" else None
        if conn_id and named and conn_id != named:
            raise CreatorSyncConfigError(
                f"{type(self).__name__} got two connection ids ({conn_id!r} and "
                f"{self.conn_name_attr}={named!r}); pass one"
            )
        super().__init__(**kwargs)
        self.conn_id = conn_id or named or self.default_conn_name
        self._transport = transport
        self._retry = retry
        self._limiters = limiters
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    def _build_client(self, conn) -> VendorClient:
        raise NotImplementedError

    def _client_kwargs(self) -> dict[str, Any]:
        """Transport, retry settings and timeout: hook arguments first, then the connection's extras."""
        conn = self.__dict__.get("_connection")
        extra = (conn.extra_dejson or {}) if conn is not None else {}
        kw: dict[str, Any] = {"transport": self._transport or self.default_transport, "retry": self._retry}
        if self._retry is None and extra.get(RETRIES_EXTRA) not in (None, ""):
            retries = _extra_number(self.conn_id, extra, RETRIES_EXTRA, integer=True, minimum=0)
            kw["retry"] = RetrySettings(max_attempts=int(retries) + 1)
        if self._timeout is not None:
            kw["timeout"] = self._timeout
        elif extra.get(TIMEOUT_EXTRA) not in (None, ""):
            kw["timeout"] = _extra_number(self.conn_id, extra, TIMEOUT_EXTRA, integer=False, minimum=0.001)
        return kw

    @cached_property
    def client(self) -> VendorClient:
        conn = self.get_connection(self.conn_id)
        mask(conn.password)
        self._connection = conn
        return self._build_client(conn)

    def get_conn(self) -> VendorClient:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    @property
    def read_timeout_s(self) -> float | None:
        return self.client.read_timeout_s

    @property
    def stats(self) -> dict[str, Any]:
        """Request counters of this hook's client (requests, retries, 429s, ...)."""
        if "client" not in self.__dict__:
            return {}
        return self.client.stats.as_dict()

    def _probe(self) -> str:
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        try:
            return True, self._probe()
        except VendorError as exc:
            return False, str(exc)
        except Exception as exc:  # never leak a secret through an unexpected error text
            text = f"{type(exc).__name__}: {exc}"
            if "client" in self.__dict__:
                text = self.client.scrub(text)
            return False, text
