"""What one HTTP attempt means for the caller: a pure classification, separate from the retry strategy.

``classify(answer)`` maps an ``httpx.Response`` or the exception an attempt raised to one ``Outcome``:

- ``OK``: a 2xx (or 3xx) answer with a readable body.
- ``UNPROCESSED``: the vendor surely did not act, so sending again is safe for any request: a throttle
  (``throttled=True``: a 429, or a 403 whose body says ``Request Limit Exceeded``, the throttle Insider's
  status-code page names, insider-data-governance.md section 0 "Throttling"), a refused connection or a
  connect/pool timeout (nothing was sent), and a 5xx status the vendor docs name as unprocessed
  (``unprocessed_statuses``; none of the current vendor docs names one).
- ``AMBIGUOUS``: the vendor may have acted and the answer was lost: a 2xx whose body is not the JSON the API
  documents (truncated), a connection dropped or a write/read timeout after the request was (partly)
  written, any other 5xx and 424. Only idempotent requests may be sent again.
- ``PERMANENT``: any other 4xx (every other 403 included); sending again cannot help.

The client (client.py) decides what to do with an outcome: retry UNPROCESSED always, AMBIGUOUS only when
``idempotent=True`` (else ``AmbiguousOutcomeError``), never PERMANENT.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import httpx


class Outcome(enum.Enum):
    OK = "ok"
    UNPROCESSED = "retryable-unprocessed"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classified:
    outcome: Outcome
    reason: str  # short, secret-free: "HTTP 502", "read timeout", "truncated 2xx body (12 bytes)", ...
    status: int | None = None
    data: Any = None  # the parsed body of an OK answer
    malformed_body: bool = False  # a 2xx whose body could not be parsed (shown as VendorResponseError)
    throttled: bool = False  # the vendor refused the request as over its rate limit (429 or a 403 throttle)


# The text of Insider's 403 throttle ("Request Limit Exceeded", insider-data-governance.md section 0); matched
# case-insensitively anywhere in a 403 body. The one owner of this phrase.
THROTTLE_403_TEXT = "request limit exceeded"


# httpx exceptions raised before any byte of the request reached the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def classify(
    answer: httpx.Response | BaseException,
    *,
    expect_json: bool = True,
    unprocessed_statuses: Collection[int] = (),
) -> Classified:
    """The outcome of one attempt (see the module docstring). Pure: reads the response, sends nothing."""
    if isinstance(answer, BaseException):
        return _classify_exception(answer)
    status = answer.status_code
    if status == 429:
        return Classified(Outcome.UNPROCESSED, "HTTP 429", status, throttled=True)
    if status == 403 and is_throttle_403(answer):
        return Classified(Outcome.UNPROCESSED, "HTTP 403 (Request Limit Exceeded)", status, throttled=True)
    if status in unprocessed_statuses:
        return Classified(Outcome.UNPROCESSED, f"HTTP {status}", status)
    if status >= 500 or status == 424:
        return Classified(Outcome.AMBIGUOUS, f"HTTP {status}", status)
    if status >= 400:
        return Classified(Outcome.PERMANENT, f"HTTP {status}", status)
    data: Any = None
    if status != 204 and answer.content:
        try:
            data = answer.json()
        except ValueError:
            if expect_json:
                reason = f"malformed JSON body ({len(answer.content)} bytes)"
                return Classified(Outcome.AMBIGUOUS, reason, status, malformed_body=True)
            data = answer.text
    return Classified(Outcome.OK, f"HTTP {status}", status, data=data)


def is_throttle_403(response: httpx.Response) -> bool:
    """A 403 whose body names the request limit: a throttle, not a rejected credential."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return False
    return THROTTLE_403_TEXT in text.lower()


def _classify_exception(exc: BaseException) -> Classified:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return Classified(Outcome.UNPROCESSED, f"timed out before sending ({type(exc).__name__})")
    if isinstance(exc, _NOT_SENT):
        return Classified(Outcome.UNPROCESSED, f"connection failed ({type(exc).__name__})")
    if isinstance(exc, httpx.TimeoutException):  # read/write timeout: the request may have been processed
        return Classified(Outcome.AMBIGUOUS, f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):  # dropped connection, protocol error after sending
        return Classified(Outcome.AMBIGUOUS, f"connection dropped ({type(exc).__name__})")
    raise TypeError(f"not an HTTP transport outcome: {type(exc).__name__}")
