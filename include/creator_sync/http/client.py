"""The one HTTP core: every hook sends through ``VendorClient.request``.

It owns: base URL + auth headers, timeouts, one reused ``httpx.Client``, the request limiter(s),
retries (tenacity: capped exponential backoff + jitter; on a throttle (429, or a 403 "Request Limit
Exceeded") ``Retry-After`` when given, else an exponential backoff sized to the limiter's window), fail-fast
errors on other 4xx, secret scrubbing and counters. What an attempt's answer means is decided by the pure
``creator_sync.http.outcomes.classify``; this module is the retry strategy over those outcomes: unprocessed
ones are retried, ambiguous ones only for idempotent requests (else ``AmbiguousOutcomeError``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity

from creator_sync.http.errors import (
    AmbiguousOutcomeError,
    VendorAuthError,
    VendorBadRequestError,
    VendorError,
    VendorNotFoundError,
    VendorRateLimitError,
    VendorResponseError,
    VendorServerError,
    VendorTransientError,
    VendorTransportError,
)
from creator_sync.http.limiter import Limiter, UnlimitedLimiter
from creator_sync.http.outcomes import Classified, Outcome, classify

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Overrides the read/write/pool timeout (seconds) of clients built without an explicit timeout.
TIMEOUT_ENV = "CREATOR_SYNC_HTTP_TIMEOUT_S"
REDACTED = "***"


@dataclass
class ClientStats:
    """Counters a pipeline report can show."""

    requests: int = 0  # attempts actually sent (including retries)
    retries: int = 0
    rate_limited_429: int = 0  # throttles: 429s and 403 "Request Limit Exceeded"
    server_errors: int = 0
    transport_errors: int = 0
    failures: int = 0  # calls that ended in an exception
    ambiguous: int = 0  # non-idempotent calls whose answer was lost (raised, never re-sent)
    waited_for_limiter_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0  # a longer Retry-After is not slept through: raise (Airflow retries)
    # A throttle without a usable Retry-After (Insider: Retry-After is "sometimes present", back off
    # exponentially; insider-data-governance.md section 0): the k-th such wait of a call is
    # min(max_retry_after, W x 2^(k-1)) plus a jitter of up to ``throttle_jitter`` x W, where W is the
    # request's limiter window (the vendor's window stretched by the safety margin), or
    # ``min_throttle_wait`` when the limiter has none. A wait of at least W puts the retry into a later
    # vendor window, whatever that window's alignment.
    min_throttle_wait: float = 1.0
    throttle_jitter: float = 0.25


@dataclass
class VendorResponse:
    status: int
    data: Any
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class RequestOptions:
    """How to send one request.

    ``limiter``: the client limiter to pass (None: the default one). ``cost``: units reserved before each
    attempt; ``actual_cost(body)`` reads the real cost from the JSON answer and settles the reservation.
    ``idempotent=False``: an ambiguous outcome raises ``AmbiguousOutcomeError`` instead of a re-send.
    ``expect_json``: a 2xx body that is not JSON is a malformed answer (else returned as text).
    ``error_map``: exception class per 4xx status (e.g. 400 -> ``WebPushTitleExistsError``).
    ``before_attempt()``: called right before each attempt goes out, after the limiter let it pass (the
    exactly-once sender renews its lease and checks its fencing token there; raising stops the request).
    """

    limiter: str | None = None
    cost: float = 1.0
    actual_cost: Callable[[Any], float | None] | None = None
    idempotent: bool = True
    expect_json: bool = True
    error_map: Mapping[int, type[VendorError]] | None = None
    before_attempt: Callable[[], None] | None = None


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    options: RequestOptions


@dataclass
class _Prepared:
    """One logical request ready to send: what it is, its limiter, and the encoded parts of each attempt."""

    call: _Call
    limiter: Limiter
    params: dict[str, Any] | None
    content: bytes | None
    headers: dict[str, str]
    throttles: int = 0  # throttles without Retry-After so far in this call


class _RetryableAttempt(Exception):
    """Internal: an attempt failed in a way the client retries itself."""

    def __init__(
        self, error: VendorTransientError, wait: float | None = None, *, throttled: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait  # minimum wait (Retry-After), if any
        self.throttled = throttled  # a throttle: without ``wait``, the window-sized backoff applies


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def default_timeout() -> httpx.Timeout:
    """DEFAULT_TIMEOUT, or ``$CREATOR_SYNC_HTTP_TIMEOUT_S`` seconds (connect stays at most 10 s)."""
    from creator_sync import settings

    seconds = settings.current().http_timeout_s
    if seconds is None:
        return DEFAULT_TIMEOUT
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


class VendorClient:
    """A vendor API client: ``request(method, path, ...)`` -> ``VendorResponse`` with parsed JSON."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        conn_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        limiters: Mapping[str, Limiter] | Limiter | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetrySettings | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        unprocessed_statuses: Iterable[int] = (),
    ) -> None:
        self.vendor = vendor
        self.base_url = _strip_userinfo(base_url.rstrip("/"))
        self.conn_id = conn_id
        if isinstance(limiters, Limiter):
            limiters = {"default": limiters}
        self.limiters: dict[str, Limiter] = dict(limiters or {"default": UnlimitedLimiter()})
        self.unprocessed_statuses = frozenset(unprocessed_statuses)  # 5xx the vendor docs call unprocessed
        self.default_limiter = next(iter(self.limiters))
        self.retry = retry or RetrySettings()
        self.stats = ClientStats()
        self._secrets = [s for s in secrets if s and len(str(s)) >= 3]
        self._sleep = sleep
        self._stats_lock = threading.Lock()
        if timeout is None:
            timeout = default_timeout()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Accept": "application/json", **dict(headers or {})},
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    # -- plumbing ---------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"VendorClient(vendor={self.vendor!r}, base_url={self.base_url!r}, conn_id={self.conn_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VendorClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def read_timeout_s(self) -> float | None:
        """How long an attempt waits for its answer (a request still on its way is processed within it)."""
        return self._http.timeout.read

    def limiter(self, name: str | None = None) -> Limiter:
        return self.limiters[name or self.default_limiter]

    def scrub(self, text: str) -> str:
        """Remove any credential of this client from ``text``."""
        for secret in self._secrets:
            text = text.replace(str(secret), REDACTED)
        return text

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _vendor_message(self, response: httpx.Response) -> str:
        text = ""
        try:
            body = response.json()
        except ValueError:
            text = response.text or ""
        else:
            if isinstance(body, dict):
                for key in ("error", "message", "detail", "error_message", "errors", "fail"):
                    value = body.get(key)
                    if value:
                        if isinstance(value, dict):
                            value = value.get("message") or value.get("detail") or json.dumps(value)
                        text = value if isinstance(value, str) else json.dumps(value)
                        break
                else:
                    text = json.dumps(body)
            else:
                text = json.dumps(body)
        text = " ".join(text.split())
        if len(text) > 500:
            text = text[:500] + "..."
        return self.scrub(text) or response.reason_phrase or "no message"

    def _error(self, cls: type[VendorError], method: str, path: str, status: int | None, msg: str, **kw):
        where = f"{self.vendor} {method} {path}"
        text = f"{where} failed: HTTP {status}: {msg}" if status is not None else f"{where} failed: {msg}"
        if cls is VendorAuthError:
            text += (
                f". The credentials were rejected: fix the login/password of Airflow connection "
                f"'{self.conn_id}'"
            )
        return cls(
            self.scrub(text),
            vendor=self.vendor,
            method=method,
            path=path,
            status=status,
            vendor_message=msg,
            conn_id=self.conn_id,
            **kw,
        )

    # -- the request --------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        options: RequestOptions | None = None,
        **option_values: Any,
    ) -> VendorResponse:
        """Send one logical request (retrying what is safe to retry) and return the parsed response.

        ``options`` (or its fields as keywords: ``limiter``, ``cost``, ``actual_cost``, ``idempotent``,
        ``expect_json``, ``error_map``; see ``RequestOptions``) say how to send it. Each attempt is classified
        by ``creator_sync.http.outcomes.classify``: an unprocessed outcome (429, refused connection) is
        retried for every request; an ambiguous one (lost answer after the vendor may have acted) only for
        ``idempotent=True``, otherwise ``AmbiguousOutcomeError`` is raised at once.
        """
        if options is None:
            options = RequestOptions(**option_values)
        elif option_values:
            options = replace(options, **option_values)
        req_headers = dict(headers or {})
        if json_body is not None and content is None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
        if content is not None:
            req_headers.setdefault("Content-Type", "application/json")
        call = _Prepared(
            call=_Call(method.upper(), path, options),
            limiter=self.limiter(options.limiter),
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            content=content,
            headers=req_headers,
        )
        return self._with_retries(call)

    def _attempt(self, p: _Prepared) -> VendorResponse:
        """One attempt: pass the limiter, run ``before_attempt``, send, classify the answer."""
        options, lim = p.call.options, p.limiter
        waited_before = lim.stats.waited_seconds
        reservation = lim.acquire(options.cost)
        if options.before_attempt is not None:
            options.before_attempt()
        self._count(requests=1, waited_for_limiter_s=lim.stats.waited_seconds - waited_before)
        started = time.monotonic()
        try:
            answer: httpx.Response | httpx.TransportError = self._http.request(
                p.call.method, p.call.path, params=p.params, content=p.content, headers=p.headers
            )
        except httpx.TransportError as exc:
            answer = exc
        classified = classify(
            answer, expect_json=options.expect_json, unprocessed_statuses=self.unprocessed_statuses
        )
        if classified.outcome is Outcome.OK:
            assert isinstance(answer, httpx.Response)
            if options.actual_cost is not None:
                self._settle(lim, reservation, options.actual_cost, classified.data)
            elapsed = time.monotonic() - started
            return VendorResponse(classified.status or 0, classified.data, answer.headers, elapsed)
        raise self._failure(p.call, classified, answer)

    def _wait(self, p: _Prepared, state: tenacity.RetryCallState) -> float:
        """How long to wait before the next attempt: Retry-After when given (plus a little jitter so clients
        do not return in lockstep), a window-sized backoff after a bare throttle, else capped backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableAttempt) and exc.wait is not None:
            return exc.wait + random.uniform(0.01, 0.1 + self.retry.jitter / 5)
        if isinstance(exc, _RetryableAttempt) and exc.throttled:
            p.throttles += 1
            return self.throttle_backoff(p.limiter.window, p.throttles)
        n = state.attempt_number
        backoff = min(self.retry.backoff_max, self.retry.backoff_initial * (2 ** (n - 1)))
        return backoff + random.uniform(0, self.retry.jitter)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self._count(retries=1)
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s; retry %d/%d in %.2fs",
            exc,
            state.attempt_number,
            self.retry.max_attempts - 1,
            state.next_action.sleep if state.next_action else 0.0,
        )

    def _with_retries(self, p: _Prepared) -> VendorResponse:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableAttempt),
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=lambda state: self._wait(p, state),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, p)
        except _RetryableAttempt as exc:
            self._count(failures=1)
            raise exc.error from None
        except VendorError:
            self._count(failures=1)
            raise

    def throttle_backoff(self, window: float, k: int) -> float:
        """The wait before retrying after the ``k``-th throttle (k >= 1) of a call that came without a usable
        Retry-After, for a limiter of ``window`` seconds (see ``RetrySettings``)."""
        base = window if window > 0 else self.retry.min_throttle_wait
        wait = min(self.retry.max_retry_after, base * 2 ** (k - 1))
        return wait + random.uniform(0, base * self.retry.throttle_jitter)

    @staticmethod
    def _settle(lim: Limiter, reservation, actual_cost: Callable[[Any], float | None], data: Any) -> None:
        try:
            real = actual_cost(data)
        except Exception:  # a body without quota info keeps the estimate
            real = None
        if real is not None:
            lim.settle(reservation, float(real))

    def _failure(
        self, call: _Call, classified: Classified, answer: httpx.Response | httpx.TransportError
    ) -> Exception:
        """The exception for a failed attempt: ``_RetryableAttempt`` (the retry loop sends again) or a
        ``VendorError`` raised to the caller at once. This is the retry strategy over the outcomes."""
        method, path, opts = call.method, call.path, call.options
        status = classified.status
        response = answer if isinstance(answer, httpx.Response) else None
        if response is None:
            self._count(transport_errors=1)
            msg = classified.reason
            if isinstance(answer, httpx.ConnectError):
                msg = f"connection failed ({self.scrub(str(answer)) or type(answer).__name__})"
            err: VendorError = self._error(VendorTransportError, method, path, None, msg)
        elif classified.throttled:  # 429, or a 403 "Request Limit Exceeded"
            self._count(rate_limited_429=1)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            rate_err = self._error(
                VendorRateLimitError,
                method,
                path,
                status,
                self._vendor_message(response),
                retry_after=retry_after,
            )
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                return rate_err
            return _RetryableAttempt(rate_err, wait=retry_after, throttled=True)
        elif classified.malformed_body:
            err = self._error(VendorResponseError, method, path, status, classified.reason)
        elif classified.outcome is Outcome.PERMANENT:
            cls = (opts.error_map or {}).get(status or 0)
            if cls is None:
                cls = {401: VendorAuthError, 403: VendorAuthError, 404: VendorNotFoundError}.get(
                    status or 0, VendorBadRequestError
                )
            return self._error(cls, method, path, status, self._vendor_message(response))
        else:  # 5xx / 424
            self._count(server_errors=1)
            err = self._error(VendorServerError, method, path, status, self._vendor_message(response))
        if classified.outcome is Outcome.AMBIGUOUS and not opts.idempotent:
            self._count(ambiguous=1)
            text = (
                f"{err}. The request may have been processed ({classified.reason}); it is not re-sent "
                "blindly: check what arrived before sending it again"
            )
            return AmbiguousOutcomeError(
                self.scrub(text),
                outcome=classified.reason,
                vendor=self.vendor,
                method=method,
                path=path,
                status=status,
                vendor_message=err.vendor_message,
                conn_id=self.conn_id,
            )
        return _RetryableAttempt(err)  # UNPROCESSED, or AMBIGUOUS for an idempotent request

    # -- conveniences ---------------------------------------------------------------------------------------

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs).data

    def post(self, path: str, json_body: Any = None, **kwargs) -> Any:
        return self.request("POST", path, json_body=json_body, **kwargs).data
