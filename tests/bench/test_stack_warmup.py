"""The bench stack answers the API server's first Task Execution API request before a measured run."""

from __future__ import annotations

import httpx
import pytest

from devtools.bench.stack import warm_execution_api


def test_the_warm_up_calls_the_execution_api_as_the_task_sdk_does(monkeypatch):
    from airflow.sdk.api.client import API_VERSION

    calls = []

    def get(url, headers, timeout):
        calls.append((url, headers))
        return httpx.Response(200, json={"status": "healthy"}, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", get)
    warm_execution_api("http://127.0.0.1:8080")
    assert calls == [("http://127.0.0.1:8080/execution/health", {"Airflow-API-Version": API_VERSION})]


def test_a_failed_warm_up_stops_the_bench(monkeypatch):
    def get(url, headers, timeout):
        return httpx.Response(503, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", get)
    with pytest.raises(httpx.HTTPStatusError):
        warm_execution_api("http://127.0.0.1:8080")
