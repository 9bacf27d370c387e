"""The Creator sync view in a real headless Chromium against an embedded Airflow and the sandboxes.

One module-scoped stack; the tests run in file order: the view refuses anonymous requests on the API
server's port, then a browser logs in, triggers creator_sync from its trigger form with dry_run, finds the
run's report in the view, in the run's "Sync report" tab and in the note, and opens the dead letters that
the scheduled run left. Screenshots go to the test's output directory; with CREATOR_SYNC_UPDATE_SCREENSHOTS=1
three of them are copied to docs/img for the README and docs/ui.md (a plain test run leaves the tree clean).

Chromium is the OS package (/usr/bin/chromium, installed by .ci/run), driven by Playwright's Python package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from devtools.airflow_stack import AirflowStack, sandbox_connections
from devtools.sandbox.launcher import SandboxServers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

DAG = "creator_sync"
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CREATOR_SYNC_CHROMIUM", "/usr/bin/chromium")
DOC_SHOTS = {
    "view.png": "creator-sync-view.png",
    "run-sync-report-tab.png": "run-report-tab.png",
    "dead-letters.png": "dead-letters.png",
}
VIEW = "/creator-sync-ui"
# the scheduled run and the dry run each read every creator at InsightIQ's 10 req/s; 3% of them per
# invalid-data reason still leave the dead letters the last test opens
CREATORS = 100


class Env:
    def __init__(self, sb: SandboxServers, stack: AirflowStack, home: Path):
        self.sb, self.stack, self.home = sb, stack, home
        self.api = stack.api
        self.password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())[
            "admin"
        ]

    def wait_for_run(self, predicate, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = [r for r in self.api.runs(DAG) if predicate(r)]
            if runs and runs[0]["state"] in ("success", "failed"):
                return runs[0]
            time.sleep(3)
        raise AssertionError(f"no finished run: {[(r['dag_run_id'], r['state']) for r in runs]}")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the OS package (apt-get install -y chromium)")
    sb = SandboxServers(creators=CREATORS, seed=11).start()
    home = tmp_path_factory.mktemp("airflow-ui")
    extra = {
        **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
        "CREATOR_SYNC_SCHEDULE": "0 0 * * *",
        "CREATOR_SYNC_RETRY_DELAY_S": "2",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rate-limits'}",
        "CREATOR_SYNC_STATE_URL": f"sqlite:///{home / 'state.db'}",
        "CREATOR_SYNC_PROGRESS_INTERVAL_S": "2",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
    }
    stack = AirflowStack(home, extra_env=extra)
    try:
        stack.start(timeout=900)
        env = Env(sb, stack, home)
        # make demo's note connection, so the run note is written too (production relies on the view)
        env.api._call(
            "POST",
            "/connections",
            json={
                "connection_id": "creator_sync_airflow_api",
                "conn_type": "http",
                "host": stack.url,
                "login": "admin",
                "password": env.password,
            },
        )
        env.api.wait_for_dag(DAG)
        env.api.wait_for_dag("creator_sync_replay")
        yield env
    finally:
        stack.stop()
        sb.stop()


def creator_emails(env: Env) -> set[str]:
    users = httpx.get(f"{env.sb.insider_url}/_sandbox/users", params={"limit": 500}).json()["data"]
    return {u["identifiers"]["email"] for u in users if (u.get("identifiers") or {}).get("email")}


def test_scheduled_run_fills_the_store(env):
    env.api.unpause(DAG)  # catchup=False: the scheduler creates the latest complete interval's run
    run = env.wait_for_run(lambda r: r["run_type"] == "scheduled")
    assert run["state"] == "success", env.api.task_states(DAG, run["dag_run_id"])
    assert creator_emails(env), "the sandbox holds no sent creators with an email"


@pytest.mark.parametrize("cookie", [None, "not-a-jwt"])
def test_anonymous_requests_are_refused_on_the_api_server(env, cookie):
    emails = creator_emails(env)
    cookies = {"_token": cookie} if cookie else None
    with httpx.Client(base_url=env.stack.url, cookies=cookies, follow_redirects=False, timeout=60) as client:
        answers = [
            client.get(f"{VIEW}/"),
            client.get(f"{VIEW}/dead-letters", params={"reason": "malformed_email"}),
            client.get(f"{VIEW}/runs/{DAG}/anything"),
            client.post(f"{VIEW}/replay", data={"reason": "malformed_email"}),
        ]
    for answer in answers:
        assert answer.status_code in (401, 403), (answer.request.url, answer.status_code)
        assert not any(email in answer.text for email in emails)
        assert "fetched" not in answer.text
    runs = env.api._call("GET", "/dags/creator_sync_replay/dagRuns")["dag_runs"]
    assert runs == []  # the refused replay started nothing


def test_a_viewer_reads_the_view_but_cannot_start_a_replay(env):
    """Airflow's auth manager decides: the viewer role may read creator_sync runs, not trigger DAGs."""
    password = json.loads((env.home / "simple_auth_manager_passwords.json.generated").read_text())["viewer"]
    token = httpx.post(f"{env.stack.url}/auth/token", json={"username": "viewer", "password": password})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=env.stack.url, headers=headers, follow_redirects=False, timeout=60) as client:
        page = client.get(f"{VIEW}/")
        assert page.status_code == 200 and "Dead letters by reason" in page.text
        refused = client.post(f"{VIEW}/replay", data={"reason": "malformed_email"})
    assert refused.status_code == 403
    assert env.api._call("GET", "/dags/creator_sync_replay/dagRuns")["dag_runs"] == []


def bearer(env: Env, user: str) -> dict[str, str]:
    password = json.loads((env.home / "simple_auth_manager_passwords.json.generated").read_text())[user]
    token = httpx.post(f"{env.stack.url}/auth/token", json={"username": user, "password": password})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_contact_data_is_masked_for_a_viewer_and_shown_to_an_admin(env):
    """Airflow's auth manager decides: the viewer role may not edit creator_sync, the admin may."""
    pages = {}
    for user in ("viewer", "admin"):
        with httpx.Client(base_url=env.stack.url, headers=bearer(env, user), timeout=60) as client:
            pages[user] = client.get(f"{VIEW}/dead-letters", params={"reason": "malformed_email"})
    assert pages["viewer"].status_code == pages["admin"].status_code == 200
    assert "Emails and phone numbers are masked" in pages["viewer"].text
    assert "masked" not in pages["admin"].text
    if "&quot;email&quot;" in pages["admin"].text:  # payloads with an email field: masked for the viewer
        assert "***@***" in pages["viewer"].text and "***@***" not in pages["admin"].text
    assert pages["viewer"].headers["content-security-policy"] == "frame-ancestors 'self'"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(env, browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto(f"{env.stack.url}/")
    page.locator("input[name='username']").fill("admin")
    page.locator("input[name='password']").fill(env.password)
    page.locator("button[type='submit']").click()
    page.wait_for_url(re.compile(r".*/(dags|home)?$|.*/$"))
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("screenshots")
    yield out
    if os.environ.get("CREATOR_SYNC_UPDATE_SCREENSHOTS") == "1":
        for name, doc_name in DOC_SHOTS.items():
            if (out / name).exists():
                shutil.copyfile(out / name, REPO / "docs" / "img" / doc_name)


def view_frame(page):
    """The plugin's iframe inside the Airflow UI page."""
    page.wait_for_selector("iframe")
    return page.frame_locator("iframe").first


def test_trigger_a_dry_run_from_the_form_and_read_its_report(env, page, shots):
    before = {r["dag_run_id"] for r in env.api.runs(DAG)}
    page.goto(f"{env.stack.url}/dags/{DAG}")
    page.get_by_role("button", name=re.compile("^Trigger", re.I)).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    switch = dialog.locator("label:has(input[name='element_dry_run'])")  # the dry_run Param's switch
    switch.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "trigger-form.png"))
    switch.click()
    assert dialog.locator("input[name='element_dry_run']").is_checked()
    page.screenshot(path=str(shots / "trigger-form-dry-run.png"))
    dialog.get_by_role("button", name=re.compile("^Trigger", re.I)).last.click()

    run = env.wait_for_run(lambda r: r["dag_run_id"] not in before and r["run_type"] == "manual")
    run_id = run["dag_run_id"]
    assert run["state"] == "success", env.api.task_states(DAG, run_id)
    assert run["conf"].get("dry_run") is True
    assert env.api.asset_events(DAG, run_id) == []  # nothing sent: the profile audit is not triggered

    page.goto(f"{env.stack.url}/plugin/creator-sync")
    frame = view_frame(page)
    row = frame.locator("table.runs tr", has_text=run_id)
    row.wait_for()
    assert "(dry run)" in row.inner_text()
    fetched = int(row.locator("td[data-figure='fetched']").inner_text().replace(",", ""))
    assert fetched == CREATORS  # every sandbox creator
    assert frame.locator("svg.chart").count() >= 3
    page.screenshot(path=str(shots / "view.png"), full_page=True)

    # the run's own page: the Sync report tab and the note
    page.goto(f"{env.stack.url}/dags/{DAG}/runs/{run_id}")
    page.get_by_role("tab", name=re.compile("Sync report")).or_(page.get_by_text("Sync report")).first.click()
    report = view_frame(page)
    report.locator("pre").wait_for()
    assert "DRY RUN" in report.locator("pre").inner_text().upper()
    page.screenshot(path=str(shots / "run-sync-report-tab.png"), full_page=True)
    note = env.api._call("GET", f"/dags/{DAG}/dagRuns/{run_id}")["note"] or ""
    assert "Reconciliation holds" in note


def test_open_the_dead_letters(env, page, shots):
    from creator_sync.store import StateStore

    store = StateStore(env.stack.env["CREATOR_SYNC_STATE_URL"])
    pending = {r: n for r, n in store.count_dead_letters().items() if n}
    assert pending, "the scheduled run left no dead letters"
    reason = max(pending, key=pending.get)
    letter = store.dead_letters(reasons=[reason], limit=1)[0]

    page.goto(f"{env.stack.url}/plugin/creator-sync")
    frame = view_frame(page)
    frame.locator("table.dead-letters").wait_for()
    assert frame.get_by_role("button", name=f"Replay {reason}").count() == 1
    frame.get_by_role("link", name=reason, exact=True).click()
    frame.locator("table.letters").wait_for()
    text = frame.locator("table.letters").inner_text()
    assert letter.user_key in text
    page.screenshot(path=str(shots / "dead-letters.png"), full_page=True)


def test_replay_button_starts_the_replay_dag(env, page, shots):
    from creator_sync.store import StateStore

    store = StateStore(env.stack.env["CREATOR_SYNC_STATE_URL"])
    reason = max((r for r, n in store.count_dead_letters().items() if n), key=lambda r: r)
    page.goto(f"{env.stack.url}/plugin/creator-sync")
    frame = view_frame(page)
    frame.get_by_role("button", name=f"Replay {reason}").click()
    frame.locator(".msg.info").wait_for()
    assert f"Started creator_sync_replay for {reason}" in frame.locator(".msg.info").inner_text()
    runs = env.api._call("GET", "/dags/creator_sync_replay/dagRuns")["dag_runs"]
    assert [r["conf"] for r in runs] == [{"reasons": [reason]}]
    assert runs[0]["triggering_user_name"] == "admin"
    page.screenshot(path=str(shots / "replay-started.png"), full_page=True)
