"""Insider web push sandbox against the doc."""

from __future__ import annotations

import httpx
import pytest
from sandbox_samples import WEB_PUSH

pytestmark = pytest.mark.slow


def test_doc_sample_and_errors(sandbox, push):
    sandbox.reset("web_push")
    created = push.post("/v1/single", json=WEB_PUSH)
    assert created.status_code == 201
    assert created.json()["success"] is True and isinstance(created.json()["campaign_id"], int)
    again = push.post("/v1/single", json=WEB_PUSH)
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    long_title = push.post("/v1/single", json={**WEB_PUSH, "title": "x" * 101})
    assert long_title.status_code == 400 and "100" in long_title.json()["message"]
    assert push.post("/v1/single", json={**WEB_PUSH, "title": "y" * 100}).status_code == 201
    no_language = push.post("/v1/single", json={"partner_id": "1", "title": "t2"})
    assert no_language.status_code == 400 and "language" in no_language.json()["message"]
    unauthorized = httpx.post(
        f"{sandbox.web_push_url}/v1/single", json=WEB_PUSH, headers={"Authorization": "Bearer wrong"}
    )
    assert unauthorized.status_code == 401 and unauthorized.json() == {"message": "Unauthorized"}


def test_rate_limit(sandbox, push):
    sandbox.reset("web_push")
    sandbox.configure("web_push", {"limits": {"requests": {"rate": 3, "window": 3600}}})
    try:
        codes = [
            push.post("/v1/single", json={**WEB_PUSH, "title": f"rate {i}"}).status_code for i in range(5)
        ]
        assert codes == [201, 201, 201, 429, 429]
        stats = sandbox.stats("web_push")
        assert stats["rate_limited_429s"] == 2 and stats["max_requests_in_window"]["requests"] == 3
    finally:
        sandbox.configure("web_push", {"limits": {"requests": {"rate": 1000, "window": 60}}})
