"""The "Creator sync" view: a FastAPI app the project's Airflow plugin mounts on the API server at
``/creator-sync-ui`` and lists in the navigation (``external_views``).

* ``GET /``  recent run reports, charts over time, dead letters by reason with a replay button.
* ``GET /runs/{dag_id}/{run_id}``  one run's report (also the "Sync report" tab of every DAG run page).
* ``GET /dead-letters?reason=...``  pending dead letters of one reason with a payload preview.
* ``POST /replay``  (form field ``reason``) triggers ``creator_sync_replay`` for that reason.

The routes live on the module-level ``router``; what they need comes through FastAPI dependencies, which
tests replace with ``app.dependency_overrides``: the state store (``get_store``), Airflow's DagRun lookup
(``get_runs_lookup``) and trigger (``get_trigger``), the Airflow UI's base path (``airflow_base``), and the
permission checks of creator_sync.ui.access. Every route requires an Airflow login, checked by Airflow's
own auth-manager dependencies: reading needs read access to ``creator_sync`` runs; a run report needs read
access to the runs of the DAG in its path; the replay button needs permission to create
``creator_sync_replay`` runs. The run is created through the API server's own ``trigger_dag`` (the code
path of ``POST /api/v2/dags/{id}/dagRuns``), in the name of the logged-in user.

Personal data: dead-letter previews show emails and phone numbers only to users who may edit the
``creator_sync`` DAG; everyone else sees them masked (creator_sync.ui.masking). Forgery and framing
(creator_sync.ui.guards): ``POST /replay`` also needs a same-origin request (``Sec-Fetch-Site`` /
``Origin``), every response forbids framing by other sites and content sniffing, and the page's banner is
chosen from fixed messages, never text from the query string. The HTML comes from Jinja2 templates with
autoescape (creator_sync.ui.pages).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from creator_sync.reasons import REPLAYABLE
from creator_sync.routes import URL_PREFIX
from creator_sync.ui import guards, pages
from creator_sync.ui.access import (
    REPLAY_DAG,
    edit_access,
    read_access,
    replay_access,
    report_access,
    user_name,
)
from creator_sync.ui.figures import RunRow, run_row

log = logging.getLogger(__name__)

RUNS_SHOWN = 30
LETTERS_SHOWN = 50

RunsLookup = Callable[[list[tuple[str, str]]], dict[tuple[str, str], dict[str, Any]]]


def airflow_runs(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """State and duration of the given (dag_id, run_id) runs from the metadata DB (API server only)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    if not keys:
        return {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with create_session() as session:
        query = sa.select(
            DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.end_date
        ).where(sa.tuple_(DagRun.dag_id, DagRun.run_id).in_(keys))
        for dag_id, run_id, state, start, end in session.execute(query):
            seconds = (end - start).total_seconds() if start and end else None
            out[(dag_id, run_id)] = {
                "state": str(state.value if hasattr(state, "value") else state),
                "seconds": seconds,
            }
    return out


def airflow_trigger_replay(reason: str, user_name: str) -> str:
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    run = trigger_dag(
        REPLAY_DAG,
        conf={"reasons": [reason]},
        triggered_by=DagRunTriggeredByType.REST_API,
        triggering_user_name=user_name,
        note=f"Replay of pending '{reason}' dead letters, started from the Creator sync view",
    )
    if run is None:
        raise RuntimeError(f"{REPLAY_DAG} is not available in the API server's DAG bag")
    return run.run_id


# -- what the routes need, as dependencies ------------------------------------------------------------


@functools.cache
def get_store():
    """The state store (``CREATOR_SYNC_STATE_URL``), one per process."""
    from creator_sync.store import StateStore

    return StateStore()


def get_runs_lookup() -> RunsLookup:
    """(dag_id, run_id) -> Airflow's state and duration of that run."""
    return airflow_runs


def get_trigger() -> Callable[[str, str], str]:
    """(reason, user name) -> the run id of the creator_sync_replay run it started."""
    return airflow_trigger_replay


def airflow_base(request: Request) -> str:
    """The Airflow UI's base path, from where this app is mounted (works behind a base_url sub-path)."""
    root = request.scope.get("root_path", "")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else ""


Store = Annotated[Any, Depends(get_store)]
Runs = Annotated[RunsLookup, Depends(get_runs_lookup)]
Base = Annotated[str, Depends(airflow_base)]


def dead_letter_counts(store) -> dict[str, tuple[int, int]]:
    """reason -> (pending, all) in one grouped query."""
    from creator_sync.store.schema import dead_letters as t

    pending = sa.func.sum(sa.case((t.c.replayed_at.is_(None), 1), else_=0))
    query = sa.select(t.c.reason, pending, sa.func.count()).group_by(t.c.reason)
    with store.engine.connect() as conn:
        return {reason: (int(p or 0), int(n)) for reason, p, n in conn.execute(query)}


def run_rows(runs: RunsLookup, reports: list[dict]) -> list[RunRow]:
    try:
        info = runs([(r["dag_id"], r["run_id"]) for r in reports])
    except Exception:  # the report figures still show without Airflow's run state
        log.exception("could not read the DAG runs' state")
        info = {}
    return [run_row(r, info.get((r["dag_id"], r["run_id"]))) for r in reports]


def replay_started(runs: RunsLookup, replayed: str | None, reason: str | None) -> pages.Banner | None:
    """The fixed "replay started" banner, shown only for a replayable reason and a replay run that exists
    (so a crafted link cannot put words on the page)."""
    if not replayed or reason not in REPLAYABLE:
        return None
    try:
        exists = (REPLAY_DAG, replayed) in runs([(REPLAY_DAG, replayed)])
    except Exception:
        log.exception("could not look up %s run %s", REPLAY_DAG, replayed)
        exists = False
    if not exists:
        return None
    return pages.Banner("info", dag_id=REPLAY_DAG, reason=reason, run_id=replayed)


async def overview_page(
    store, runs: RunsLookup, base: str, *, banner=None, started=(None, None), status_code: int = 200
) -> HTMLResponse:
    def load():
        return (
            run_rows(runs, store.run_reports(limit=RUNS_SHOWN)),
            dead_letter_counts(store),
            banner or replay_started(runs, *started),
        )

    rows, counts, shown = await run_in_threadpool(load)
    html = pages.overview(rows, counts, airflow_base=base, replayable=REPLAYABLE, banner=shown)
    return HTMLResponse(html, status_code=status_code)


# -- the routes ------------------------------------------------------------------------------------------

router = APIRouter()


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(read_access)])
async def overview(
    store: Store, runs: Runs, base: Base, replayed: str | None = None, reason: str | None = None
):
    return await overview_page(store, runs, base, started=(replayed, reason))


@router.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[Depends(report_access)])
async def run_report(store: Store, runs: Runs, base: Base, dag_id: str, run_id: str):
    def load():
        for report in store.run_reports(dag_id=dag_id, limit=RUNS_SHOWN * 10):
            if report["run_id"] == run_id:
                return run_rows(runs, [report])[0]
        return None

    row = await run_in_threadpool(load)
    return HTMLResponse(pages.run_report(row, airflow_base=base), status_code=200 if row else 404)


@router.get("/dead-letters", response_class=HTMLResponse, dependencies=[Depends(read_access)])
async def dead_letters(
    store: Store, base: Base, reason: str, unmasked: Annotated[bool, Depends(edit_access)]
):
    def load():
        counts = dead_letter_counts(store)
        if reason not in counts:
            return None, 0
        return store.dead_letters(reasons=[reason], limit=LETTERS_SHOWN), counts[reason][0]

    letters, pending = await run_in_threadpool(load)
    if letters is None:  # an unknown reason is not echoed back onto the page
        return HTMLResponse(pages.message("Dead letters", "No dead letters of that reason."), 404)
    html = pages.dead_letters(reason, letters, airflow_base=base, pending=pending, masked=not unmasked)
    return HTMLResponse(html)


# in this order: anonymous requests get Airflow's 401 first
REPLAY_GUARDS = [Depends(read_access), Depends(replay_access), Depends(guards.same_origin)]


@router.post("/replay", dependencies=REPLAY_GUARDS)
async def replay(
    store: Store,
    runs: Runs,
    base: Base,
    reason: Annotated[str, Form()],
    user: Annotated[str, Depends(user_name)],
    trigger: Annotated[Callable[[str, str], str], Depends(get_trigger)],
):
    if reason not in REPLAYABLE:
        raise HTTPException(
            400, f"{reason!r} is not a reason {REPLAY_DAG} replays (have: {sorted(REPLAYABLE)})"
        )
    try:
        run_id = await run_in_threadpool(trigger, reason, user)
    except Exception as exc:  # shown on this response itself, never carried in a URL
        log.exception("could not trigger %s", REPLAY_DAG)
        failed = f"Could not start {REPLAY_DAG}: {type(exc).__name__}: {exc}"[:300]
        return await overview_page(store, runs, base, banner=pages.Banner("error", failed), status_code=503)
    log.info("%s triggered %s for reason %s: %s", user, REPLAY_DAG, reason, run_id)
    return RedirectResponse(f"./?replayed={quote(run_id)}&reason={quote(reason)}", status_code=303)


def create_app() -> FastAPI:
    """The view's app: the router, and the security headers on every response (refusals included)."""
    app = FastAPI(title="creator-sync view", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    app.middleware("http")(guards.add_security_headers)
    return app
