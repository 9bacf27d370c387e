"""The "Creator sync" view: a FastAPI app the project's Airflow plugin mounts on the API server at
``/creator-sync-ui`` and lists in the navigation (``external_views``).

* ``GET /``  recent run reports, charts over time, dead letters by reason with a replay button.
* ``GET /runs/{dag_id}/{run_id}``  one run's report (also the "Sync report" tab of every DAG run page).
* ``GET /dead-letters?reason=...``  pending dead letters of one reason with a payload preview.
* ``POST /replay``  (form field ``reason``) triggers ``creator_sync_replay`` for that reason.

Every route requires an Airflow login, checked by Airflow's own auth-manager dependencies
(``airflow.api_fastapi.core_api.security.requires_access_dag``): the JWT the Airflow UI holds in its
``_token`` cookie (or an ``Authorization: Bearer`` token). Reading needs read access to ``creator_sync``
runs; the replay button needs permission to create ``creator_sync_replay`` runs. The run is created
through the API server's own ``trigger_dag`` (the code path of ``POST /api/v2/dags/{id}/dagRuns``), in
the name of the logged-in user. Like Airflow's own API, the cookie is ``SameSite=Lax``, so another site
cannot make a browser post the replay form with it.
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
from creator_sync.ui import URL_PREFIX, pages
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
) -> FastAPI:
    """Tests replace the Airflow-bound parts (store, DagRun lookup, trigger); the auth dependencies are
    Airflow's unless given."""
    read = Depends(read_access or airflow_read_access())
    app = FastAPI(title="creator-sync view", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Any] = {}

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

    @app.get("/", response_class=HTMLResponse, dependencies=[read])
    async def overview(
        request: Request, replayed: str | None = None, reason: str | None = None, error: str | None = None
    ):
        def load():
            s = store()
            return rows(s.run_reports(limit=RUNS_SHOWN)), dead_letter_counts(s)

        runs, counts = await run_in_threadpool(load)
        base = airflow_base(request)
        message = None
        if replayed and reason:
            href = f"{base}/dags/{REPLAY_DAG}/runs/{quote(replayed, safe='')}"
            message = (
                "info",
                f"Started {REPLAY_DAG} for <b>{escape(reason)}</b>: "
                f'<a href="{escape(href)}" target="_top">{escape(replayed)}</a>',
            )
        elif error:
            message = ("error", escape(error))
        html = pages.overview(runs, counts, airflow_base=base, replayable=REPLAYABLE, message=message)
        return HTMLResponse(html)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[read])
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
    async def dead_letters(request: Request, reason: str):
        def load():
            s = store()
            return s.dead_letters(reasons=[reason], limit=LETTERS_SHOWN), dead_letter_counts(s).get(
                reason, (0, 0)
            )[0]

        letters, pending = await run_in_threadpool(load)
        html = pages.dead_letters(
            reason, letters, airflow_base=airflow_base(request), pending=pending, shown=len(letters)
        )
        return HTMLResponse(html)

    replay_deps = [read, Depends(replay_access or airflow_replay_access())]

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
        except Exception as exc:
            log.exception("could not trigger %s", REPLAY_DAG)
            target = f"./?error={quote(f'Could not start {REPLAY_DAG}: {type(exc).__name__}: {exc}'[:300])}"
            return RedirectResponse(target, status_code=303)
        log.info("%s triggered %s for reason %s: %s", user, REPLAY_DAG, reason, run_id)
        return RedirectResponse(f"./?replayed={quote(run_id)}&reason={quote(reason)}", status_code=303)

    return app
