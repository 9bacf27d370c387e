"""Insider outcomes an exactly-once sender must survive, through the real sandbox server: ingestion lag
(the Profile API sees a processed upsert only later; the inspection views see it at once) and users
rejected inside an accepted upsert (``reject_uuids``)."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_samples import INSIDER_HEADERS, PURCHASE

from devtools.sandbox.launcher import SandboxServers

pytestmark = pytest.mark.slow
UPSERT, PROFILE, DELETE = "/api/user/v1/upsert", "/api/user/v1/profile", "/api/user/v1/attribute/delete"
LAG = 3.0  # long enough that a loaded machine still reads before the lag has passed
EVENTS = {"start_date": 1_600_000_000, "end_date": 1_700_000_000, "wanted": [{"event_name": "purchase"}]}
DEFAULTS = {"ingestion_lag_seconds": 0, "reject_uuids": [], "drop_attributes": []}


@pytest.fixture
def fresh(sandbox):
    sandbox.reset("insider")
    yield
    sandbox.configure("insider", DEFAULTS)


def profile(insider, uuid: str) -> httpx.Response:
    body = {"identifiers": {"uuid": uuid}, "attributes": ["name"], "events": EVENTS}
    return insider.post(PROFILE, json=body)


def wait_visible(insider, uuid: str, check, timeout: float = LAG + 10) -> float:
    """Seconds until the Profile API's answer for ``uuid`` passes ``check``."""
    started = time.monotonic()
    while not check(profile(insider, uuid)):
        assert time.monotonic() - started < timeout, profile(insider, uuid).text
        time.sleep(0.1)
    return time.monotonic() - started


def names(response: httpx.Response) -> tuple[str | None, int]:
    body = response.json()
    return body["attributes"].get("name"), len(body["events"]["purchase"])


def test_without_lag_the_profile_api_sees_an_upsert_at_once(sandbox, insider, fresh):
    assert sandbox.configure("insider", {})["ingestion_lag_seconds"] == 0.0  # the default
    user = {"identifiers": {"uuid": "now-1"}, "attributes": {"name": "Ann"}, "events": [PURCHASE]}
    assert insider.post(UPSERT, json={"users": [user]}).status_code == 200
    response = profile(insider, "now-1")
    assert response.status_code == 200 and names(response) == ("Ann", 1)
    assert sandbox.stats("insider")["profile_pending_writes"] == 0


def test_a_new_user_is_unknown_to_the_profile_api_until_the_lag_has_passed(sandbox, insider, fresh):
    sandbox.configure("insider", {"ingestion_lag_seconds": LAG})
    user = {"identifiers": {"uuid": "lag-1"}, "attributes": {"name": "Ann"}, "events": [PURCHASE]}
    sent = time.monotonic()
    assert insider.post(UPSERT, json={"users": [user]}).json()["data"]["successful"] == {"count": 1}
    assert insider.post(UPSERT, json={"users": [user]}).status_code == 200  # a re-send: a duplicate event
    assert profile(insider, "lag-1").status_code == 404
    # stored at once: the inspection views and the counters show the true state
    stored = sandbox.insider_lookup(["lag-1"])["lag-1"]
    assert stored["attributes"]["name"] == "Ann" and len(stored["events"]) == 2
    stats = sandbox.stats("insider")
    assert stats["users_stored"] == 1 and stats["events_stored"] == 2 and stats["duplicate_events"] == 1
    assert stats["profile_pending_writes"] == 2
    wait_visible(insider, "lag-1", lambda r: r.status_code == 200)
    assert time.monotonic() - sent >= LAG
    assert names(profile(insider, "lag-1")) == ("Ann", 2)
    assert sandbox.stats("insider")["profile_pending_writes"] == 0


def test_updates_and_deletes_of_a_known_user_become_visible_in_order(sandbox, insider, fresh):
    user = {"identifiers": {"uuid": "lag-2"}, "attributes": {"name": "Ann", "tags": ["a"]}}
    assert insider.post(UPSERT, json={"users": [user]}).status_code == 200
    sandbox.configure("insider", {"ingestion_lag_seconds": LAG})
    update = {"identifiers": {"uuid": "lag-2"}, "attributes": {"name": "Bea"}, "events": [PURCHASE]}
    assert insider.post(UPSERT, json={"users": [update]}).status_code == 200
    gone = {"users": [{"identifiers": {"uuid": "lag-2"}, "whole": ["tags"]}]}
    assert insider.post(DELETE, json=gone).status_code == 200
    assert names(profile(insider, "lag-2")) == ("Ann", 0)  # the user is known; the update is not, yet
    assert tags_of(insider, "lag-2")["tags"] == ["a"]
    true_state = sandbox.insider_lookup(["lag-2"])["lag-2"]
    assert true_state["attributes"]["name"] == "Bea" and "tags" not in true_state["attributes"]
    wait_visible(insider, "lag-2", lambda r: names(r) == ("Bea", 1))
    # the delete arrived after the update, so it becomes visible when its own lag has passed (on a loaded
    # machine a moment after the update), never before the update
    deadline = time.monotonic() + LAG + 10
    while "tags" in tags_of(insider, "lag-2"):
        assert names(profile(insider, "lag-2")) == ("Bea", 1)  # the update stays visible meanwhile
        assert time.monotonic() < deadline, "the attribute delete never became visible"
        time.sleep(0.1)


def tags_of(insider, uuid: str) -> dict:
    return insider.post(PROFILE, json={"identifiers": {"uuid": uuid}, "attributes": ["tags"]}).json()[
        "attributes"
    ]


def test_anonymize_acts_at_once_for_the_profile_api(sandbox, insider, fresh):
    sandbox.configure("insider", {"ingestion_lag_seconds": 60})
    user = {"identifiers": {"uuid": "lag-3"}, "attributes": {"name": "Ann"}}
    assert insider.post(UPSERT, json={"users": [user]}).status_code == 200
    assert profile(insider, "lag-3").status_code == 404
    assert insider.post("/api/user/v1/anonymize", json={"identifiers": {"uuid": "lag-3"}}).status_code == 200
    assert names(profile(insider, "lag-3")) == (None, 0)  # known at once, and without the PII name


def test_lag_config_is_reported_validated_and_kept_across_reset(sandbox, fresh):
    assert sandbox.configure("insider", {"ingestion_lag_seconds": 2})["ingestion_lag_seconds"] == 2.0
    sandbox.reset("insider")
    assert httpx.get(f"{sandbox.insider_url}/_sandbox/config").json()["ingestion_lag_seconds"] == 2.0
    bad = httpx.post(f"{sandbox.insider_url}/_sandbox/config", json={"ingestion_lag_seconds": -1})
    assert bad.status_code == 400 and "ingestion_lag_seconds" in bad.json()["error"]


def test_reject_uuids_fails_the_chosen_users_and_stores_the_rest(sandbox, insider, fresh, receiver):
    batch = [{"identifiers": {"uuid": u}, "attributes": {"name": u}} for u in ("rej-0", "rej-1", "rej-2")]
    body = {"error_callback_endpoint": receiver.url + "/cb", "users": batch}
    # off (the default): every user is stored
    assert insider.post(UPSERT, json=body).json()["data"] == {"successful": {"count": 3}, "fail": {}}
    sandbox.reset("insider")
    config = sandbox.configure("insider", {"reject_uuids": ["rej-1"]})
    assert config["reject_uuids"] == ["rej-1"]
    response = insider.post(UPSERT, json=body)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["successful"] == {"count": 2} and data["fail"]["count"] == 1
    assert list(data["fail"]["errors"]) == ["users.1.identifiers.unification"]
    found = sandbox.insider_lookup(["rej-0", "rej-1", "rej-2"])
    assert found["rej-1"] is None and found["rej-0"] and found["rej-2"]
    receiver.wait(1)
    assert receiver.json(0) == {"skip_hook": False, "users": [batch[1]]}
    stats = sandbox.stats("insider")
    assert stats["unification_errors"] == {"identifiers": 0, "reject_uuids": 1}
    sandbox.reset("insider")
    assert sandbox.configure("insider", {})["reject_uuids"] == ["rej-1"]  # kept across reset
    bad = httpx.post(f"{sandbox.insider_url}/_sandbox/config", json={"reject_uuids": "rej-1"})
    assert bad.status_code == 400


def test_data_alone_produces_a_unification_error_as_the_readme_says(sandbox, insider, fresh):
    first = [{"identifiers": {"uuid": "a", "email": "a@x.com"}}, {"identifiers": {"uuid": "b"}}]
    assert insider.post(UPSERT, json={"users": first}).json()["data"]["successful"] == {"count": 2}
    clash = {"identifiers": {"uuid": "b", "email": "a@x.com"}}
    data = insider.post(UPSERT, json={"users": [clash]}).json()["data"]
    assert list(data["fail"]["errors"]) == ["users.0.identifiers.unification"]
    merged = {"identifiers": {"uuid": "c", "email": "a@x.com"}}  # c is not stored: it joins a@x.com's user
    assert insider.post(UPSERT, json={"users": [merged]}).json()["data"]["successful"] == {"count": 1}
    assert sandbox.stats("insider")["unification_errors"] == {"identifiers": 1, "reject_uuids": 0}
    assert sandbox.stats("insider")["users_stored"] == 2


def test_cli_flags_set_lag_and_complete_after_disconnect():
    args = ["--insider-ingestion-lag", "2", "--insider-complete-after-disconnect"]
    with SandboxServers(creators=20, seed=5, extra_args=args) as sb:
        config = httpx.get(f"{sb.insider_url}/_sandbox/config").json()
        assert config["ingestion_lag_seconds"] == 2.0 and config["complete_after_disconnect"] is True
        with httpx.Client(base_url=sb.insider_url, headers=INSIDER_HEADERS, timeout=30) as insider:
            user = {"identifiers": {"uuid": "cli-1"}, "attributes": {"name": "Ann"}}
            assert insider.post(UPSERT, json={"users": [user]}).status_code == 200
            assert profile(insider, "cli-1").status_code == 404
            assert wait_visible(insider, "cli-1", lambda r: r.status_code == 200) > 0
    with SandboxServers(creators=20, seed=5) as sb:
        config = httpx.get(f"{sb.insider_url}/_sandbox/config").json()
        assert config["ingestion_lag_seconds"] == 0.0 and config["complete_after_disconnect"] is False
