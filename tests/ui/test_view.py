"""The Creator sync view (creator_sync.ui.app) on a real state store, with Airflow's run lookup and
trigger replaced; Airflow's own auth dependency answers the anonymous requests."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from creator_sync.store import StateStore
from creator_sync.ui import access, guards
from creator_sync.ui import app as ui_app
from creator_sync.ui.app import create_app

EMAIL = "ada.lovelace@example.com"


def figures(fetched, sent, rejected, unchanged, *, iq=(120, 2, 1), ins=(7, 1, 0), reconciled=True):
    return {
        "fetched_creators": fetched,
        "sent": sent,
        "rejected": rejected,
        "rejected_total": sum(rejected.values()),
        "unchanged": unchanged,
        "reconciled": reconciled,
        "vendors": {
            "InsightIQ": dict(zip(("requests", "retries", "rate_limited_429"), iq, strict=True)),
            "Insider": dict(zip(("requests", "retries", "rate_limited_429"), ins, strict=True)),
        },
    }


@pytest.fixture
def store(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.save_run_report(
        "creator_sync",
        "scheduled__2026-11-29T00:00:00+00:00",
        figures(1000, 900, {"malformed_email": 40, "vendor_rejected": 10}, 50),
        "### creator-sync run\n| figure | value |\n|---|---|\n| fetched creators | 1000 |",
        True,
    )
    store.save_run_report(
        "creator_sync",
        "manual__2026-11-30T08:00:00+00:00",
        figures(1000, 3, {"malformed_email": 40}, 950, iq=(118, 0, 0), ins=(1, 0, 0), reconciled=False),
        "RECONCILIATION DOES NOT HOLD",
        False,
    )
    store.add_dead_letters(
        "scheduled__2026-11-29T00:00:00+00:00",
        [
            {"user_key": "u1", "reason": "malformed_email", "detail": "no @", "payload": {"email": EMAIL}},
            {
                "user_key": "u2",
                "reason": "malformed_email",
                "detail": "no @",
                "payload": {"email": "<script>x"},
            },
            {
                "user_key": "u3",
                "reason": "vendor_rejected",
                "detail": "Insider fail",
                "payload": {"phone": "+1"},
            },
        ],
    )
    store.mark_replayed([d.id for d in store.dead_letters(reasons=["vendor_rejected"])])
    return store


class Calls:
    def __init__(self):
        self.triggered: list[tuple[str, str]] = []
        self.fail = False

    def trigger(self, reason: str, user: str) -> str:
        if self.fail:
            raise RuntimeError("creator_sync_replay is paused")
        self.triggered.append((reason, user))
        return "manual__2026-12-01T00:00:00+00:00"


def runs_info(keys):
    return {key: {"state": "success", "seconds": 20.0} for key in keys}


def allow():
    return None


def deny():
    raise HTTPException(401, "Not authenticated")


@pytest.fixture
def calls():
    return Calls()


def may_edit():
    return True


GUARDS = {
    "read": access.read_access,
    "replay": access.replay_access,
    "report": access.report_access,
    "edit": access.edit_access,
    "user": access.user_name,
    "origin": guards.same_origin,
}


def view_app(store, calls, *, runs=runs_info, **replaced) -> FastAPI:
    """The view on `store`, with Airflow's run lookup and trigger replaced; the guards named in `replaced`
    (GUARDS) are replaced too, the others are Airflow's own."""
    app = create_app()
    app.dependency_overrides.update(
        {
            ui_app.get_store: lambda: store,
            ui_app.get_runs_lookup: lambda: runs,
            ui_app.get_trigger: lambda: calls.trigger,
        }
    )
    app.dependency_overrides.update({GUARDS[name]: dependency for name, dependency in replaced.items()})
    return app


def client_for(store, calls, *, read=allow, replay=allow, edit=may_edit, report=allow) -> TestClient:
    """A browser of the Airflow UI (same-origin requests) logged in as alice, who may edit the DAG unless
    `edit` says otherwise."""
    app = view_app(store, calls, read=read, replay=replay, user=lambda: "alice", report=report, edit=edit)
    return TestClient(app, root_path="/creator-sync-ui", headers={"Sec-Fetch-Site": "same-origin"})


def test_overview_shows_runs_per_vendor_reconciliation_charts_and_dead_letters(store, calls):
    page = client_for(store, calls).get("/").text
    run_rows = re.findall(r"<tr><td class=\"l\"><a href=[^>]*>([^<]+)</a>.*?</tr>", page)
    assert run_rows[:2] == ["manual__2026-11-30T08:00:00+00:00", "scheduled__2026-11-29T00:00:00+00:00"]
    scheduled = re.search(r"<tr>(?:(?!</tr>).)*scheduled__2026-11-29(?:(?!</tr>).)*</tr>", page).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", scheduled)
    # fetched, sent, rejected, unchanged, then InsightIQ and Insider requests/retries/429s
    assert cells[2:12] == ["1,000", "900", "50", "50", "120", "2", "1", "7", "1", "0"]
    assert "holds" in cells[12] and "GAP" in page
    # links to the Airflow run pages, at the Airflow base under which the view is mounted
    assert 'href="/dags/creator_sync/runs/scheduled__2026-11-29T00%3A00%3A00%2B00%3A00" target="_top"' in page
    assert page.count("<svg") == 4  # creators, requests, one rate-vs-limit chart per vendor
    assert "limit req/s 10" in page  # InsightIQ: 10 requests per 1 s window (pools file)
    assert "limit req/s 417" in page  # Insider upsert: 25,000 per minute
    # dead letters: pending and all counts per reason, a replay button only where something is pending
    assert re.search(r"malformed_email</a></td><td>2</td><td>2</td>.*?Replay malformed_email", page)
    assert re.search(r"vendor_rejected</a></td><td>0</td><td>1</td><td class=\"l\">.*nothing pending", page)
    assert "Replay vendor_rejected" not in page


def test_renders_offline_with_no_external_resource(store, calls):
    page = client_for(store, calls).get("/").text
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"(src|href)=\"https?://", page)


def test_run_report_page_and_unknown_run(store, calls):
    client = client_for(store, calls)
    page = client.get("/runs/creator_sync/manual__2026-11-30T08:00:00+00:00")
    assert page.status_code == 200 and "RECONCILIATION DOES NOT HOLD" in page.text
    missing = client.get("/runs/creator_sync/manual__1999")
    assert missing.status_code == 404 and "No report stored" in missing.text


def test_dead_letters_page_previews_payloads_escaped(store, calls):
    page = client_for(store, calls).get("/dead-letters", params={"reason": "malformed_email"}).text
    assert EMAIL in page and "2 pending" in page
    assert "<script>x" not in page and "&lt;script&gt;x" in page


def test_replay_button_triggers_the_replay_dag_for_that_reason_as_the_user(store, calls):
    client = client_for(store, calls)
    answer = client.post("/replay", data={"reason": "malformed_email"}, follow_redirects=False)
    assert answer.status_code == 303
    assert calls.triggered == [("malformed_email", "alice")]
    page = client.get(answer.headers["location"].removeprefix(".")).text
    assert "Started creator_sync_replay for <b>malformed_email</b>" in page
    assert 'href="/dags/creator_sync_replay/runs/manual__2026-12-01T00%3A00%3A00%2B00%3A00"' in page


def test_replay_refuses_an_unknown_reason_and_reports_a_failed_trigger(store, calls):
    client = client_for(store, calls)
    assert client.post("/replay", data={"reason": "whatever"}).status_code == 400
    assert calls.triggered == []
    calls.fail = True
    answer = client.post("/replay", data={"reason": "malformed_email"}, follow_redirects=False)
    assert answer.status_code == 503  # the failure is on this response, not carried in a redirect URL
    assert "Could not start creator_sync_replay: RuntimeError: creator_sync_replay is paused" in answer.text


def test_replay_needs_its_own_permission(store, calls):
    client = client_for(store, calls, replay=deny)
    assert client.post("/replay", data={"reason": "malformed_email"}).status_code == 401
    assert calls.triggered == []


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/"),
        ("GET", "/runs/creator_sync/scheduled__2026-11-29T00:00:00+00:00"),
        ("GET", "/dead-letters?reason=malformed_email"),
        ("POST", "/replay"),
    ],
)
def test_airflow_auth_refuses_anonymous_requests(store, calls, method, path):
    """The default read/replay guards are Airflow's requires_access_dag: no JWT -> 401, no data."""
    answer = TestClient(view_app(store, calls)).request(method, path, data={"reason": "malformed_email"})
    assert answer.status_code == 401
    assert EMAIL not in answer.text and "1,000" not in answer.text
    assert calls.triggered == []


def test_without_the_guard_the_creator_data_would_be_visible(store, calls):
    """The leak the auth test looks for is real: with the guard switched off the page holds the email."""
    page = client_for(store, calls, read=allow).get("/dead-letters", params={"reason": "malformed_email"})
    assert EMAIL in page.text
    denied = client_for(store, calls, read=deny).get("/dead-letters", params={"reason": "malformed_email"})
    assert denied.status_code == 401 and EMAIL not in denied.text


def test_a_report_without_per_vendor_figures_still_shows(tmp_path, calls):
    store = StateStore(f"sqlite:///{tmp_path / 'flat.db'}")
    store.save_run_report(
        "creator_sync",
        "r1",
        {
            "fetched_creators": 5,
            "sent": 5,
            "rejected": {},
            "unchanged": 0,
            "reconciled": True,
            "insightiq_requests": 9,
            "insider_requests": 1,
            "retried_requests": 0,
            "rate_limited_429": 0,
        },
        "",
        True,
    )
    page = client_for(store, calls).get("/").text
    row = re.search(r"<tr>(?:(?!</tr>).)*>r1<(?:(?!</tr>).)*</tr>", page).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[2:6] == ["5", "5", "0", "0"] and cells[6] == "9" and cells[9] == "1"
