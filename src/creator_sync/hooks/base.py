"""Shared hook plumbing: connection -> cached VendorClient, secret masking, test_connection."""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any

import httpx
from airflow.sdk.bases.hook import BaseHook

from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.http.errors import VendorError


def mask(*values: Any) -> None:
    """Register secrets with Airflow's secrets masker (task process and supervisor)."""
    for value in values:
        if value:
            with contextlib.suppress(Exception):
                from airflow.sdk.log import mask_secret

                mask_secret(value)


class VendorHook(BaseHook):
    """Base of the creator-sync hooks: one cached ``VendorClient`` per hook instance.

    ``transport``/``retry``/``limiters`` are injection points for tests and tuning; production code
    passes only ``conn_id``.
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
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._transport = transport
        self._retry = retry
        self._limiters = limiters
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    def _build_client(self, conn) -> VendorClient:
        raise NotImplementedError

    def _client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"transport": self._transport or self.default_transport, "retry": self._retry}
        if self._timeout is not None:
            kw["timeout"] = self._timeout
        return kw

    @cached_property
    def client(self) -> VendorClient:
        conn = self.get_connection(self.conn_id)
        mask(conn.password)
        return self._build_client(conn)

    def get_conn(self) -> VendorClient:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

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
