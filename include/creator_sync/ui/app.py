"""The "Creator sync" view: a FastAPI app the project's Airflow plugin mounts on the API server at
``/creator-sync-ui`` and lists in the navigation (``external_views``).

* ``GET /``  recent run reports, charts over time, dead letters by reason with a replay button.
* ``GET /runs/{dag_id}/{run_id}``  one run's report (also the "Sync report" tab of every DAG run page).
* ``GET /dead-letters?reason=...``  pending dead letters of one reason with a payload preview.
* ``POST /replay``  (form field ``reason``) triggers ``creator_sync_replay`` for that reason.

Every route requires an Airflow login, checked by Airflow's own auth-manager dependencies
(``airflow.api_fastapi.core_api.security.requires_access_dag``): the JWT the Airflow UI holds in its
``_token`` cookie (or an ``Authorization: Bearer`` token). Reading needs read access to ``creator_sync``
runs; a run report needs read access to the runs of the DAG in its path; the replay button needs
permission to create ``creator_sync_replay`` runs. The run is created through the API server's own
``trigger_dag`` (the code path of ``POST /api/v2/dags/{id}/dagRuns``), in the name of the logged-in user.

Personal data: dead-letter previews show emails and phone numbers only to users who may edit the
``creator_sync`` DAG (the auth manager's ``is_authorized_dag(PUT)``); everyone else sees them masked
(creator_sync.ui.masking). Forgery and framing (creator_sync.ui.guards): ``POST /replay`` also needs a
same-origin request (``Sec-Fetch-Site`` / ``Origin``), every response forbids framing by other sites and
content sniffing, and the page's banner is chosen from fixed messages, never text from the query string.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from creator_sync.reasons import REPLAYABLE
from creator_sync.routes import URL_PREFIX
from creator_sync.ui import guards, pages
from creator_sync.ui.figures import RunRow, run_row

log = logging.getLogger(__name__)

SYNC_DAG = "creator_sync"
REPLAY_DAG = "creator_sync_replay"
RUNS_SHOWN = 30
LETTERS_SHOWN = 50


def airflow_read_access() -> Callable:
    """Read access to creator_sync DAG runs, decided by the configured Airflow auth manager."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=SYNC_DAG)


def airflow_report_access() -> Callable:
    """Read access to the runs of the DAG named in the path (``/runs/{dag_id}/...``)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN)


def airflow_edit_access() -> Callable:
    """Whether the user may edit the creator_sync DAG, decided by the configured Airflow auth manager
    (the check behind ``PATCH /api/v2/dags/creator_sync``): such users see unmasked previews."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import get_user
    from airflow.models.dag import DagModel

    def can_edit(user=Depends(get_user)) -> bool:  # noqa: B008 - FastAPI dependency
        details = DagDetails(id=SYNC_DAG, team_name=DagModel.get_team_name(SYNC_DAG))
        return bool(get_auth_manager().is_authorized_dag(method="PUT", details=details, user=user))

    return can_edit


def airflow_replay_access() -> Callable:
    """Permission to create creator_sync_replay runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=REPLAY_DAG)


def airflow_user_name() -> Callable:
    from airflow.api_fastapi.core_api.security import get_user

    async def name(user=Depends(get_user)) -> str:  # noqa: B008 - FastAPI dependency
        return user.get_name()

    return name


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


def default_store():
    from creator_sync.store import StateStore

    return StateStore()


def dead_letter_counts(store) -> dict[str, tuple[int, int]]:
    """reason -> (pending, all) in one grouped query."""
    from creator_sync.store.schema import dead_letters as t

    pending = sa.func.sum(sa.case((t.c.replayed_at.is_(None), 1), else_=0))
    query = sa.select(t.c.reason, pending, sa.func.count()).group_by(t.c.reason)
    with store.engine.connect() as conn:
        return {reason: (int(p or 0), int(n)) for reason, p, n in conn.execute(query)}


def airflow_base(request: Request) -> str:
    """The Airflow UI's base path, from where this app is mounted (works behind a base_url sub-path)."""
    root = request.scope.get("root_path", "")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else ""


def create_app(
    *,
    store_factory: Callable[[], Any] = default_store,
    runs_info: Callable[[list[tuple[str, str]]], dict] = airflow_runs,
    trigger_replay: Callable[[str, str], str] = airflow_trigger_replay,
    read_access: Callable | None = None,
    replay_access: Callable | None = None,
    user_name: Callable | None = None,
    report_access: Callable | None = None,
    edit_access: Callable | None = None,
    origin_check: Callable | None = None,
) -> FastAPI:
    """Tests replace the Airflow-bound parts (store, DagRun lookup, trigger); the auth dependencies are
    Airflow's unless given."""
    read = Depends(read_access or airflow_read_access())
    report_read = Depends(report_access or airflow_report_access())
    may_edit = Depends(edit_access or airflow_edit_access())
    app = FastAPI(title="creator-sync view", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Any] = {}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in guards.SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def store():
        if "store" not in state:
            state["store"] = store_factory()
        return state["store"]

    def rows(reports: list[dict]) -> list[RunRow]:
        try:
            info = runs_info([(r["dag_id"], r["run_id"]) for r in reports])
        except Exception:  # the report figures still show without Airflow's run state
            log.exception("could not read the DAG runs' state")
            info = {}
        return [run_row(r, info.get((r["dag_id"], r["run_id"]))) for r in reports]

    def replay_started(
        base: str, replayed: str | None = None, reason: str | None = None
    ) -> tuple[str, str] | None:
        """The fixed "replay started" banner, shown only for a replayable reason and a replay run that
        exists (so a crafted link cannot put words on the page)."""
        if not replayed or reason not in REPLAYABLE:
            return None
        try:
            exists = (REPLAY_DAG, replayed) in runs_info([(REPLAY_DAG, replayed)])
        except Exception:
            log.exception("could not look up %s run %s", REPLAY_DAG, replayed)
            exists = False
        if not exists:
            return None
        href = f"{base}/dags/{REPLAY_DAG}/runs/{quote(replayed, safe='')}"
        return (
            "info",
            f"Started {REPLAY_DAG} for <b>{escape(reason)}</b>: "
            f'<a href="{escape(href)}" target="_top">{escape(replayed)}</a>',
        )

    async def overview_page(
        request: Request, message=None, status_code: int = 200, **started
    ) -> HTMLResponse:
        def load():
            s = store()
            return (
                rows(s.run_reports(limit=RUNS_SHOWN)),
                dead_letter_counts(s),
                replay_started(base, **started),
            )

        base = airflow_base(request)
        runs, counts, banner = await run_in_threadpool(load)
        html = pages.overview(
            runs, counts, airflow_base=base, replayable=REPLAYABLE, message=message or banner
        )
        return HTMLResponse(html, status_code=status_code)

    @app.get("/", response_class=HTMLResponse, dependencies=[read])
    async def overview(request: Request, replayed: str | None = None, reason: str | None = None):
        return await overview_page(request, replayed=replayed, reason=reason)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[report_read])
    async def run_report(request: Request, dag_id: str, run_id: str):
        def load():
            for report in store().run_reports(dag_id=dag_id, limit=RUNS_SHOWN * 10):
                if report["run_id"] == run_id:
                    return rows([report])[0]
            return None

        row = await run_in_threadpool(load)
        html = pages.run_report(row, airflow_base=airflow_base(request), dag_id=dag_id, run_id=run_id)
        return HTMLResponse(html, status_code=200 if row else 404)

    @app.get("/dead-letters", response_class=HTMLResponse, dependencies=[read])
    async def dead_letters(request: Request, reason: str, unmasked: bool = may_edit):
        def load():
            s = store()
            counts = dead_letter_counts(s)
            if reason not in counts:
                return None, 0
            return s.dead_letters(reasons=[reason], limit=LETTERS_SHOWN), counts[reason][0]

        letters, pending = await run_in_threadpool(load)
        if letters is None:  # an unknown reason is not echoed back onto the page
            return HTMLResponse(pages.page("Dead letters", "<p>No dead letters of that reason.</p>"), 404)
        html = pages.dead_letters(
            reason,
            letters,
            airflow_base=airflow_base(request),
            pending=pending,
            shown=len(letters),
            masked=not unmasked,
        )
        return HTMLResponse(html)

    replay_deps = [  # in this order: anonymous requests get Airflow's 401 first
        read,
        Depends(replay_access or airflow_replay_access()),
        Depends(origin_check or guards.same_origin),
    ]

    @app.post("/replay", dependencies=replay_deps)
    async def replay(
        request: Request, reason: str = Form(...), user: str = Depends(user_name or airflow_user_name())
    ):
        if reason not in REPLAYABLE:
            raise HTTPException(
                400, f"{reason!r} is not a reason {REPLAY_DAG} replays (have: {sorted(REPLAYABLE)})"
            )
        try:
            run_id = await run_in_threadpool(trigger_replay, reason, user)
        except Exception as exc:  # shown on this response itself, never carried in a URL
            log.exception("could not trigger %s", REPLAY_DAG)
            failed = f"Could not start {REPLAY_DAG}: {type(exc).__name__}: {exc}"[:300]
            return await overview_page(request, message=("error", escape(failed)), status_code=503)
        log.info("%s triggered %s for reason %s: %s", user, REPLAY_DAG, reason, run_id)
        return RedirectResponse(f"./?replayed={quote(run_id)}&reason={quote(reason)}", status_code=303)

    return app
