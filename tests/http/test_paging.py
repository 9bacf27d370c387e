"""Paging is loud on malformed vendor pages: a page without a list under ``data`` fails naming the endpoint
and offset instead of silently ending the list (which would truncate the run's data)."""

from __future__ import annotations

import httpx
import pytest

from creator_sync.http.client import RetrySettings, VendorClient
from creator_sync.http.errors import MalformedPageError, VendorResponseError
from creator_sync.http.paging import iter_offset

PATH = "/v1/social/contents"


def client_for(bad_page_body, *, bad_offset=200, total=500) -> tuple[VendorClient, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        calls.append(offset)
        if offset == bad_offset:
            return httpx.Response(200, json=bad_page_body)
        n = max(0, min(100, total - offset))
        return httpx.Response(200, json={"data": [{"i": offset + i} for i in range(n)], "metadata": {}})

    client = VendorClient(
        vendor="InsightIQ",
        base_url="https://api.example.test",
        transport=httpx.MockTransport(handler),
        retry=RetrySettings(max_attempts=2),
        sleep=lambda s: None,
    )
    return client, calls


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"metadata": {"offset": 200}}, "no 'data' key"),
        ({"data": None, "metadata": {}}, "'data': null"),
        ({"data": {"id": "x"}}, "'data' is a dict, not a list"),
        ({"data": "oops"}, "'data' is a str, not a list"),
        ([{"i": 1}], "a JSON list instead of an object"),
    ],
)
def test_a_malformed_page_in_the_middle_fails_naming_endpoint_and_offset(body, what):
    client, calls = client_for(body)
    seen = []
    with pytest.raises(MalformedPageError) as info:
        for record in iter_offset(client, PATH, {"account_id": "a"}):
            seen.append(record["i"])
    err = info.value
    assert f"InsightIQ GET {PATH} at offset 200" in str(err) and what in str(err)
    assert err.offset == 200 and err.path == PATH
    assert isinstance(err, VendorResponseError) and err.retryable  # an Airflow retry may get a good page
    assert seen == list(range(200))  # the pages before it were yielded, nothing after
    assert calls == [0, 100, 200]


def test_a_malformed_first_page_fails_too():
    client, calls = client_for({"data": None}, bad_offset=0)
    with pytest.raises(MalformedPageError, match="at offset 0"):
        list(iter_offset(client, PATH))
    assert calls == [0]


def test_an_empty_list_still_ends_paging_quietly():
    client, calls = client_for({"data": []}, bad_offset=300)
    assert len(list(iter_offset(client, PATH))) == 300
    assert calls == [0, 100, 200, 300]
