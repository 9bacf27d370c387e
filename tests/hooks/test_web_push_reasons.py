"""Web Push 400 bodies read for their reason: the documented one (an existing title) and the others (a missing
field, a title over 100 characters, a bad language), which a title-exists reading would turn into a false
"the campaign was created"."""

from __future__ import annotations

import httpx
import pytest

from creator_sync.hooks import web_push
from creator_sync.hooks.web_push import (
    INVALID_REQUEST,
    TITLE_EXISTS,
    InsiderWebPushHook,
    WebPushCreateUnconfirmedError,
    WebPushTitleExistsError,
    bad_request_reason,
)
from creator_sync.http.client import RetrySettings
from creator_sync.http.errors import VendorBadRequestError
from creator_sync.http.limiter import UnlimitedLimiter

LOST = httpx.ReadTimeout("read timed out")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("a campaign with the title 'Launch' already exists", TITLE_EXISTS),
        ("title exists", TITLE_EXISTS),
        ("Title must be unique", TITLE_EXISTS),
        ("Bad Request", TITLE_EXISTS),  # says nothing more: the documented reading
        ("", TITLE_EXISTS),
        (None, TITLE_EXISTS),
        ("language is required (string)", INVALID_REQUEST),
        ("title cannot be more than 100 characters (got 120)", INVALID_REQUEST),
        ("partner_id is required", INVALID_REQUEST),
        ("request body is not valid JSON", INVALID_REQUEST),
        ("invalid language: en", INVALID_REQUEST),
    ],
)
def test_each_400_message_is_read_for_its_reason(message, reason):
    assert bad_request_reason(message) == reason


def answers(*steps):
    def handler(request):
        step = steps[0] if len(steps) == 1 else steps[len(handler.seen)]
        handler.seen.append(request)
        if isinstance(step, Exception):
            raise step
        return step

    handler.seen = []
    return handler


def hook(handler) -> InsiderWebPushHook:
    return InsiderWebPushHook(
        transport=httpx.MockTransport(handler),
        limiters={"insider_web_push": UnlimitedLimiter()},
        retry=RetrySettings(max_attempts=2, backoff_initial=0, jitter=0),
    )


def test_a_400_with_another_reason_is_a_bad_request_with_insiders_message(conn_env):
    handler = answers(httpx.Response(400, json={"message": "language is required (string)"}))
    with pytest.raises(VendorBadRequestError, match="language is required") as info:
        hook(handler).create_single_push("Launch", "en_US")
    assert not isinstance(info.value, WebPushTitleExistsError)
    assert "not an existing title" in str(info.value)


def test_a_lost_answer_then_a_400_with_another_reason_is_not_reported_as_created(conn_env):
    handler = answers(LOST, httpx.Response(400, json={"message": "language must be like en_US"}))
    with pytest.raises(VendorBadRequestError) as info:
        hook(handler).create_single_push("Launch", "en_US")
    assert not isinstance(info.value, WebPushCreateUnconfirmedError)
    assert len(handler.seen) == 2


def test_the_guard_fails_when_every_400_is_read_as_title_exists(conn_env, monkeypatch):
    """The guard switched off: the same answers claim the campaign was created."""
    monkeypatch.setattr(web_push, "bad_request_reason", lambda message: TITLE_EXISTS)
    handler = answers(LOST, httpx.Response(400, json={"message": "language must be like en_US"}))
    with pytest.raises(WebPushCreateUnconfirmedError, match="was created"):
        hook(handler).create_single_push("Launch", "en_US")
