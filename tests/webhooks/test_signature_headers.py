"""Both signature header names of the sources (insightiq-webhook-events.md, "Signature verification"), each
with several comma-separated signatures (secret rotation), through the one verifier."""

from __future__ import annotations

import json

import pytest
from webhook_support import SECRET

from creator_sync.webhooks import signature
from creator_sync.webhooks.signature import SIGNATURE_HEADERS, sign, signatures, verify

URL = "/webhooks/insightiq"


def body(event_id: str) -> bytes:
    data = {"account_id": "acc-1", "user_id": "user-1", "profile_id": "prof-1"}
    return json.dumps(
        {"id": event_id, "event": "PROFILES.UPDATED", "name": "profiles updated", "data": data}
    ).encode()


def post(client, raw: bytes, headers: dict):
    return client.post(URL, content=raw, headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("name", SIGNATURE_HEADERS)
def test_a_delivery_signed_under_either_header_name_is_accepted(client, store, name):
    raw = body(f"evt-{name}")
    assert post(client, raw, {name: sign(raw, SECRET)}).status_code == 200
    assert store.delivery(f"evt-{name}")["action"] == "queued"


@pytest.mark.parametrize("name", SIGNATURE_HEADERS)
def test_rotation_several_signatures_under_either_name_and_forgeries_refused(client, name):
    raw = body(f"rot-{name}")
    assert (
        post(client, raw, {name.lower(): f"{sign(raw, 'old-secret')},{sign(raw, SECRET)}"}).status_code == 200
    )
    forged = body(f"forged-{name}")
    assert (
        post(client, forged, {name: f"{sign(forged, 'old-secret')}, {sign(forged, 'x')}"}).status_code == 401
    )


def test_a_good_entry_under_one_name_and_a_stale_one_under_the_other_is_accepted(client):
    raw = body("both")
    headers = {"Webhook-Signatures": sign(raw, "stale-secret"), "Phyllo-Signature": sign(raw, SECRET)}
    assert post(client, raw, headers).status_code == 200


def test_an_unsigned_delivery_names_both_headers(client):
    response = post(client, body("unsigned"), {})
    assert response.status_code == 401
    assert all(name in response.text for name in SIGNATURE_HEADERS)


def test_the_guard_fails_with_one_header_name_only(client, monkeypatch):
    """The guard switched off (only ``Webhook-Signatures`` read): a Phyllo-Signature delivery gets 401."""
    monkeypatch.setattr(signature, "SIGNATURE_HEADERS", ("Webhook-Signatures",))
    raw = body("guard")
    assert post(client, raw, {"Phyllo-Signature": sign(raw, SECRET)}).status_code == 401


def test_verify_reads_every_entry_of_every_name():
    raw = b"{}"
    headers = {"Phyllo-Signature": " , " + sign(raw, "a"), "Webhook-Signatures": "zz"}
    assert signatures(headers) == ["zz", sign(raw, "a")]
    assert verify(raw, headers, ["a"]) and not verify(raw, headers, ["b"])
