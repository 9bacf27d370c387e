"""Issue 24, the view: personal data by role, the report route's DAG check, cross-site posts, framing and
spoofed banners. Each guard is also switched off once to show the attack it stops. Airflow's own
``requires_access_dag`` and ``get_user`` run here, with a fake auth manager deciding per DAG."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from test_view import EMAIL, Calls, allow, client_for, runs_info, view_app
from test_view import store as store

from creator_sync.ui import access, guards, masking

PHONE = "+44 20 7946 0958"


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def pii_store(store):
    store.add_dead_letters(
        "scheduled__2026-11-30T00:00:00+00:00",
        [
            {
                "user_key": "grace@example.com",  # a user without a uuid is keyed by email
                "reason": "unification_error",
                "detail": f"identifiers clash with {EMAIL}",
                "payload": {"identifiers": {"email": "grace@example.com", "phone_number": PHONE}},
            }
        ],
    )
    return store


def cannot_edit():
    return False


def can_edit():
    return True


# -- personal data by role ------------------------------------------------------------------------------


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_viewer_who_may_not_edit_the_dag_sees_masked_emails_and_phones(
    pii_store, calls, monkeypatch, guard
):
    if guard == "off":
        monkeypatch.setattr(masking, "mask_payload", lambda value: value)
        monkeypatch.setattr(masking, "mask_text", lambda text: text)
    client = client_for(pii_store, calls, edit=cannot_edit)
    page = client.get("/dead-letters", params={"reason": "unification_error"}).text
    if guard == "off":  # the finding: a read-only user sees the creators' contact data
        assert "grace@example.com" in page and PHONE in page
        return
    assert "grace@example.com" not in page and PHONE not in page and EMAIL not in page
    assert "g***@***" in page and "***58" in page and "masked" in page


def test_an_editor_sees_the_payload_unmasked(pii_store, calls):
    page = client_for(pii_store, calls, edit=can_edit).get(
        "/dead-letters", params={"reason": "unification_error"}
    )
    assert "grace@example.com" in page.text and PHONE in page.text and "masked" not in page.text


class FakeAuthManager:
    """Grants per (method, dag_id): what an Airflow role with per-DAG permissions would."""

    def __init__(self, grants: set[tuple[str, str]]):
        self.grants, self.asked = grants, []

    def is_authorized_dag(self, *, method, access_entity=None, details=None, user=None):
        self.asked.append((method, details.id if details else None))
        return (method, details.id if details else None) in self.grants


@pytest.fixture
def airflow_auth(monkeypatch):
    """Airflow's dependencies with a fake auth manager and a logged-in user; no metadata DB."""
    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.core_api.security as security
    from airflow.models.dag import DagModel

    manager = FakeAuthManager({("GET", "creator_sync")})
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(security, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(DagModel, "get_team_name", staticmethod(lambda dag_id, **kw: None))
    return manager


def airflow_client(store, calls, **kwargs) -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    app = view_app(store, calls, **kwargs)
    app.dependency_overrides[get_user] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    return TestClient(app)


def test_unmasked_previews_follow_airflows_can_edit_dag_check(pii_store, calls, airflow_auth):
    client = airflow_client(pii_store, calls)
    page = client.get("/dead-letters", params={"reason": "unification_error"}).text
    assert ("PUT", "creator_sync") in airflow_auth.asked
    assert "grace@example.com" not in page
    airflow_auth.grants.add(("PUT", "creator_sync"))
    assert "grace@example.com" in client.get("/dead-letters", params={"reason": "unification_error"}).text


# -- the report route checks the DAG in its path ------------------------------------------------------


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_run_report_needs_read_access_to_the_dag_in_the_path(store, calls, airflow_auth, guard):
    store.save_run_report(
        "creator_offboard", "manual__1", {"erased": 1}, "erased InsightIQ user `u-77`", True
    )
    kwargs = {"report": access.read_access} if guard == "off" else {}
    client = airflow_client(store, calls, **kwargs)
    answer = client.get("/runs/creator_offboard/manual__1")
    if guard == "off":  # the finding: access checked on creator_sync, another DAG's report served
        assert answer.status_code == 200 and "u-77" in answer.text
        return
    assert answer.status_code == 403 and "u-77" not in answer.text
    assert ("GET", "creator_offboard") in airflow_auth.asked
    assert client.get("/runs/creator_sync/manual__2026-11-30T08:00:00+00:00").status_code == 200


# -- cross-site posts ----------------------------------------------------------------------------------

CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site"},
    {},  # neither header and no Authorization: not a request of this page
]


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_replay_posted_from_another_site_is_refused(store, calls, headers, guard):
    app = view_app(
        store,
        calls,
        read=allow,
        replay=allow,
        user=lambda: "alice",
        report=allow,
        edit=can_edit,
        **({"origin": allow} if guard == "off" else {}),
    )
    client = TestClient(app, cookies={"_token": "alice's session"})
    answer = client.post(
        "/replay", data={"reason": "malformed_email"}, headers=headers, follow_redirects=False
    )
    if guard == "off":  # the finding: the cookie alone authorises a form posted by any site
        assert answer.status_code == 303 and calls.triggered == [("malformed_email", "alice")]
        return
    assert answer.status_code == 403 and calls.triggered == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://testserver"},
        {"Authorization": "Bearer a-token"},  # an API client, not a browser form
    ],
)
def test_a_replay_from_the_page_itself_or_an_api_client_is_accepted(store, calls, headers):
    client = client_for(store, calls)
    client.headers.pop("Sec-Fetch-Site")
    answer = client.post(
        "/replay", data={"reason": "malformed_email"}, headers=headers, follow_redirects=False
    )
    assert answer.status_code == 303 and calls.triggered == [("malformed_email", "alice")]


def test_the_configured_base_url_is_an_own_origin(monkeypatch):
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/replay",
        "headers": [(b"host", b"10.0.0.5:8080"), (b"origin", b"https://airflow.example.com")],
        "server": ("10.0.0.5", 8080),
    }
    assert guards.is_same_origin(Request(scope), "https://airflow.example.com")
    assert not guards.is_same_origin(Request(scope), None)


# -- framing, sniffing, spoofed banners -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/dead-letters?reason=malformed_email", "/runs/creator_sync/nope", "/dead-letters?reason=x"]
)
def test_every_response_forbids_foreign_framing_and_sniffing(store, calls, path):
    answer = client_for(store, calls).get(path)
    assert answer.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_refusals_carry_the_headers_too(store, calls):
    def deny():
        raise HTTPException(401, "Not authenticated")

    answer = client_for(store, calls, read=deny).get("/")
    assert answer.status_code == 401 and answer.headers["x-content-type-options"] == "nosniff"


def test_without_the_headers_the_page_could_be_framed_anywhere(store, calls, monkeypatch):
    monkeypatch.setattr(guards, "SECURITY_HEADERS", {})
    assert "content-security-policy" not in client_for(store, calls).get("/").headers


SPOOF = "Your session expired, call +1 555 0100 to restore access"


@pytest.mark.parametrize(
    "params",
    [
        {"error": SPOOF},
        {"replayed": SPOOF, "reason": "malformed_email"},  # no such replay run
        {"replayed": "manual__x", "reason": SPOOF},  # not a replayable reason
    ],
)
def test_the_banner_never_shows_text_from_the_query_string(store, calls, params):
    def no_such_run(keys):  # Airflow knows no creator_sync_replay run of that id
        return {k: v for k, v in runs_info(keys).items() if k[0] != "creator_sync_replay"}

    app = view_app(store, calls, runs=no_such_run, read=allow, replay=allow, report=allow, edit=can_edit)
    page = TestClient(app).get("/", params=params).text
    assert SPOOF not in page and "Started creator_sync_replay" not in page


def test_ids_from_the_url_are_not_echoed_on_not_found_pages(store, calls):
    client = client_for(store, calls)
    missing = client.get(f"/runs/creator_sync/{SPOOF}")
    assert missing.status_code == 404 and SPOOF not in missing.text
    unknown = client.get("/dead-letters", params={"reason": SPOOF})
    assert unknown.status_code == 404 and SPOOF not in unknown.text
