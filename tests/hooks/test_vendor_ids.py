"""Issue 24: ids from webhooks, Params and vendor data are validated against a strict pattern and
percent-encoded before they become part of a vendor URL path; with the check switched off, `../webhooks`
reaches another endpoint and `?` adds parameters (shown once per hostile id)."""

from __future__ import annotations

import httpx
import pytest
from test_insightiq_hook import Recorder, hook

from creator_sync import vendor_ids
from creator_sync.vendor_ids import InvalidVendorId

HOSTILE = ["../webhooks", "a?limit=1", "a/b", "a#b", "%2e%2e", "a b", "", "-a", "é", "x" * 129, "a\nb"]
UUID = "6f4f2c1e-2b8a-4c1d-9c3e-0a1b2c3d4e5f"


@pytest.mark.parametrize("record_id", HOSTILE)
def test_a_hostile_record_id_requests_nothing(conn_env, record_id):
    rec = Recorder(lambda req: httpx.Response(200, json={"id": "x"}))
    with pytest.raises(InvalidVendorId, match="is not a valid id"):
        hook(rec).get_record("accounts", record_id)
    with pytest.raises(InvalidVendorId):
        hook(rec).update_webhook(record_id, "http://hook", ["PROFILES.UPDATED"])
    assert rec.requests == []


@pytest.mark.parametrize("record_id", ["../webhooks", "a?limit=1"])
def test_without_the_check_the_id_leaves_its_path(conn_env, monkeypatch, record_id):
    monkeypatch.setattr(vendor_ids, "record_id", lambda value, what="": value)
    rec = Recorder(lambda req: httpx.Response(200, json={"id": "x"}))
    hook(rec).get_record("accounts", record_id)
    url = rec.requests[0].url
    assert url.path == "/v1/webhooks" or url.params.get("limit") == "1"  # the attack of issue 24


def test_valid_ids_reach_their_own_record(conn_env):
    rec = Recorder(lambda req: httpx.Response(200, json={"id": "x"}))
    hook(rec).get_record("accounts", UUID)
    hook(rec).get_record("users", "user-1_a")
    assert [r.url.path for r in rec.requests] == [f"/v1/accounts/{UUID}", "/v1/users/user-1_a"]


def test_external_ids_are_percent_encoded(conn_env):
    rec = Recorder(lambda req: httpx.Response(200, json={"id": "x"}))
    hook(rec).get_user_by_external_id("../webhooks?x=1#y")
    assert rec.requests[0].url.raw_path == b"/v1/users/external_id/..%2Fwebhooks%3Fx%3D1%23y"
    for bad in ("", " ", "a\x00b", "x" * 257):
        with pytest.raises(InvalidVendorId):
            hook(rec).get_user_by_external_id(bad)
    assert len(rec.requests) == 1
