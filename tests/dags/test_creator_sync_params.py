"""creator_sync Params: lookback_hours is validated by its JSON schema (what the trigger form enforces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.connections import validated_params as assign

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "creator_sync_dag.py"


@pytest.fixture(scope="module")
def creator_sync():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["creator_sync"]


def test_lookback_defaults_to_the_environment_and_is_documented(creator_sync):
    assert creator_sync.params.validate()["lookback_hours"] is None  # None = CREATOR_SYNC_LOOKBACK_HOURS
    description = creator_sync.params.get_param("lookback_hours").description
    assert "CREATOR_SYNC_LOOKBACK_HOURS" in description and "never sent twice" in description
    assert "lookback_hours" in creator_sync.doc_md


@pytest.mark.parametrize("good", [None, 0, 1, 48])
def test_lookback_accepts_whole_hours(creator_sync, good):
    assert assign(creator_sync, lookback_hours=good)["lookback_hours"] == good


@pytest.mark.parametrize("bad", [-1, 1.5, "3", "x", True])
def test_lookback_rejects_anything_else(creator_sync, bad):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="lookback_hours"):
        assign(creator_sync, lookback_hours=bad)


# -- dry_run, skip_hook override, account_ids forms -------------------------------------------------------

import json  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402

START, END = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC)


def context(run_type="scheduled", **params):
    from creator_sync.sync.run_context import SyncRun  # noqa: F401  (import check)

    base = {"dry_run": False, "account_ids": [], "skip_hook": "auto", "lookback_hours": None}
    dag_run = SimpleNamespace(run_id=f"{run_type}__x", run_type=run_type, run_after=END)
    return {
        "params": {**base, **params},
        "dag_run": dag_run,
        "data_interval_start": START,
        "data_interval_end": END,
    }


@pytest.mark.parametrize(
    ("run_type", "override", "expected"),
    [
        ("scheduled", "auto", False),
        ("backfill", "auto", True),
        ("manual", "auto", False),
        ("backfill", "false", False),  # the override wins over the backfill default
        ("scheduled", "true", True),
    ],
)
def test_skip_hook_auto_follows_the_run_type_and_the_override_wins(run_type, override, expected):
    from creator_sync.sync.run_context import SyncRun

    assert SyncRun.from_context(context(run_type, skip_hook=override)).skip_hook is expected


@pytest.mark.parametrize(
    "form", [["a1", "a2"], "a1, a2", " a1,a2 ,"], ids=["list", "string", "ragged-string"]
)
def test_account_ids_as_a_list_or_a_comma_separated_string(creator_sync, form):
    from creator_sync.sync.run_context import SyncRun

    assert assign(creator_sync, account_ids=form)["account_ids"] == form  # the trigger form accepts both
    assert SyncRun.from_context(context(account_ids=form)).account_ids == ("a1", "a2")


def test_dry_run_param_is_a_boolean(creator_sync):
    from airflow.sdk.exceptions import ParamValidationError

    from creator_sync.sync.run_context import SyncRun

    assert assign(creator_sync, dry_run=True)["dry_run"] is True
    with pytest.raises(ParamValidationError, match="dry_run"):
        assign(creator_sync, dry_run="yes")
    assert SyncRun.from_context(context(dry_run=True)).dry_run is True


def test_the_dag_tells_the_pipeline_story_with_the_projects_operators(creator_sync):
    from creator_sync.assets import INSIDER_USERS_SENT
    from creator_sync.operators import InsiderUpsertOperator

    tasks = {t.task_id: t for t in creator_sync.tasks}
    assert list(tasks) == [
        "sync_accounts", "fetch_creators", "fetch_contents", "fetch_account_shard", "transform", "upsert",
        "report",
    ]  # fmt: skip
    assert isinstance(tasks["upsert"], InsiderUpsertOperator) and tasks["upsert"].pool == "insider_upsert"
    assert {tasks[t].pool for t in ("fetch_creators", "fetch_contents", "fetch_account_shard")} == {
        "insightiq_api"
    }
    # the report emits the audit's Asset through an alias: only the events it adds, none on a dry run
    assert tasks["report"].outlets == [INSIDER_USERS_SENT]
    assert all(t.outlets == [] for t in tasks.values() if t.task_id != "report")
    # the transform's and the report's results are one XCom each, not one per key (a round trip each)
    assert tasks["report"].multiple_outputs is False and tasks["transform"].multiple_outputs is False
    assert all(t.retry_policy is not None for t in tasks.values())


def test_the_upsert_reads_its_inputs_from_the_transforms_one_xcom(creator_sync):
    """The upsert's fields render from the transform task's return value, key by key."""
    import jinja2

    upsert = creator_sync.get_task("upsert")
    assert upsert.upstream_task_ids == {"transform"}
    transformed = {
        "users_path": "/r/users.jsonl",
        "rejected_path": "/r/rejected.jsonl",
        "malformed_path": "/r/malformed.jsonl",
        "clears_path": "/r/clears.jsonl",
        "skip_hook": True,
        "dry_run": False,
    }
    pulled = []

    def xcom_pull(task_ids):
        pulled.append(task_ids)
        return transformed

    ti = SimpleNamespace(xcom_pull=xcom_pull)
    rendered = {key: jinja2.Template(getattr(upsert, key)).render(ti=ti) for key in transformed}
    assert rendered == {key: str(value) for key, value in transformed.items()}
    assert set(pulled) == {"transform"}


def dag_module(task):
    """The DAG file's module as the DagBag loaded it (its constants)."""
    import sys

    return sys.modules[task.python_callable.__module__]


def test_the_first_task_routes_targeted_runs_to_the_fast_path_and_the_rest_to_the_fetch_tasks(creator_sync):
    """sync_accounts is a branch whose two ways are the fetch tasks (full path) and the report (fast path);
    the report runs after either (the other way is skipped), and nothing after the report."""
    from airflow.providers.standard.operators.python import BranchPythonOperator

    tasks = {t.task_id: t for t in creator_sync.tasks}
    route = tasks["sync_accounts"]
    module = dag_module(route)
    assert isinstance(route, BranchPythonOperator)
    # a branch skips the direct downstream tasks it does not follow: the report is followed on both paths
    assert set(route.downstream_task_ids) == set(module.FULL_PATH)
    assert module.FAST_PATH == ["report"] and "report" in module.FULL_PATH
    fetches = [t for t in module.FULL_PATH if t != "report"]
    assert fetches and all(tasks[t].upstream_task_ids == {"sync_accounts"} for t in fetches)
    assert tasks["report"].upstream_task_ids == {"sync_accounts", "transform", "upsert"}
    assert tasks["report"].trigger_rule == "none_failed_min_one_success"
    assert tasks["report"].downstream_task_ids == set()
    # it reads InsightIQ for a targeted run with every insightiq_api slot (its client spends them all)
    assert (route.pool, route.pool_slots) == ("insightiq_api", module.INSIGHTIQ_SLOTS)


def test_no_more_fetch_tasks_at_once_than_insightiq_slots(creator_sync):
    """fetch_creators then fetch_contents share one slot in turn; one account shard per other slot."""
    from creator_sync.limits import INSIGHTIQ_POOL, pool_slots

    tasks = {t.task_id: t for t in creator_sync.tasks}
    module = dag_module(tasks["sync_accounts"])
    slots = pool_slots(INSIGHTIQ_POOL)
    assert slots - 1 == module.ACCOUNT_SHARDS and slots == module.INSIGHTIQ_SLOTS
    assert tasks["fetch_contents"].upstream_task_ids == {"fetch_creators"}
    assert tasks["transform"].upstream_task_ids == {"fetch_contents", "fetch_account_shard"}
    shards = tasks["fetch_account_shard"]
    assert shards.partial_kwargs["of"] == module.ACCOUNT_SHARDS
    assert slots >= 1 + module.ACCOUNT_SHARDS


def test_a_run_without_account_ids_takes_the_full_path_without_a_request(creator_sync, monkeypatch):
    from creator_sync.sync import targeted

    monkeypatch.setattr(targeted, "sync_accounts", lambda *a, **k: pytest.fail("a full run synced accounts"))
    route = next(t for t in creator_sync.tasks if t.task_id == "sync_accounts")
    module = dag_module(route)
    for run_type in ("scheduled", "manual", "backfill"):
        assert route.python_callable(**context(run_type)) == module.FULL_PATH


def _run(tmp_path, *, dry_run):
    from creator_sync.sync.run_context import SyncRun

    class Run(SyncRun):
        @property
        def dir(self):
            return tmp_path

    return Run("manual__1", START, END, False, dry_run, ())


def _transformed(tmp_path, fetched, rejected=None):
    from creator_sync.pipeline.transform import TransformStats

    stats = TransformStats(fetched_creators=fetched, users_written=fetched, rejected=rejected or {})
    (tmp_path / "transform_stats.json").write_text(json.dumps(stats.__dict__))
    return {"stats_path": str(tmp_path / "transform_stats.json"), "users_path": str(tmp_path / "users.jsonl")}


def test_dry_run_report_says_so_first_reconciles_and_is_stored(tmp_path):
    from creator_sync.pipeline.send import SendReport
    from creator_sync.store import StateStore
    from creator_sync.sync.steps import report_step

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    sent = {"send": SendReport(users_sent=3, events_sent=5, requests=1, dry_run=True).as_dict()}
    result = report_step(_run(tmp_path, dry_run=True), _transformed(tmp_path, 3), sent, state=state)
    first, second = result["text"].splitlines()[:2]
    assert first.startswith("DRY RUN") and second.startswith("creator_sync 2026-01-01 10:00")
    assert "would send 3 users, 5 events in 1 requests; unchanged 0; rejected 0" in result["text"]
    assert result["reconciled"] and (tmp_path / "report.md").read_text().startswith("DRY RUN")
    [stored] = state.run_reports("creator_sync")
    assert stored["ok"] and stored["figures"]["dry_run"] is True and stored["text"] == result["text"]


def test_a_reconciliation_gap_fails_the_report_task_after_storing_the_report(tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from creator_sync.store import StateStore
    from creator_sync.sync.steps import report_step

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.record_outcomes("manual__1", [("u1", "sent", 2)])  # 1 of 3 fetched creators accounted for
    with pytest.raises(AirflowFailException, match=r"RECONCILIATION DOES NOT HOLD.*2 creator"):
        report_step(_run(tmp_path, dry_run=False), _transformed(tmp_path, 3), {"send": {}}, state=state)
    [stored] = state.run_reports("creator_sync")
    assert stored["ok"] is False and "RECONCILIATION DOES NOT HOLD" in stored["text"]


def test_the_report_emits_the_audit_asset_event_only_for_a_run_that_sent():
    """Through the SDK's own outlet accessors and what its task runner sends on success: a dry run adds no
    event to the alias, a run that sent adds one event of INSIDER_USERS with the run's figures. The
    control: the Asset itself as the outlet is sent as an Asset, which the API server turns into an event on
    every success, a dry run's included (tests/e2e check both on a real stack)."""
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from airflow.sdk.execution_time.task_runner import _build_asset_profiles, _serialize_outlet_events

    from creator_sync.assets import INSIDER_USERS, INSIDER_USERS_SENT
    from creator_sync.sync.steps import announce_users

    dry = OutletEventAccessors()
    assert announce_users({"dry_run": True}, dry) is False
    assert list(_serialize_outlet_events(dry)) == []
    assert [p.type for p in _build_asset_profiles([INSIDER_USERS_SENT])] == ["AssetAlias"]
    assert [p.type for p in _build_asset_profiles([INSIDER_USERS])] == ["Asset"]  # the control

    sent = OutletEventAccessors()
    assert announce_users({"dry_run": False, "run_id": "r", "users_path": "/u", "sent": 3}, sent) is True
    [event] = sent[INSIDER_USERS_SENT].asset_alias_events
    assert len(list(_serialize_outlet_events(sent))) == 1
    assert event.dest_asset_key.name == INSIDER_USERS.name and event.dest_asset_key.uri == INSIDER_USERS.uri
    assert event.extra == {"run_id": "r", "users_path": "/u", "sent": 3}


def test_replay_offers_every_reason_whose_letters_hold_a_user_safe_to_send():
    """Not offered: malformed source records (no user), unsettled lost answers (their events may be at
    Insider already: an operator checks first), failed clears (the next run's clears repeat them) and invalid
    income items (an InsightIQ record, no user)."""
    from airflow.dag_processing.dagbag import DagBag

    from creator_sync.pipeline.validate import MALFORMED_SOURCE_RECORD, REASONS
    from creator_sync.reasons import CLEAR_FAILED, INVALID_INCOME_ITEM, UNSETTLED_LOST_ANSWER

    bag = DagBag(dag_folder=str(DAG_FILE.parent / "creator_sync_replay.py"), safe_mode=False)
    dag = bag.dags["creator_sync_replay"]
    offered = dag.params.get_param("reasons").schema["items"]["enum"]
    held = {MALFORMED_SOURCE_RECORD, UNSETTLED_LOST_ANSWER, CLEAR_FAILED, INVALID_INCOME_ITEM}
    assert set(offered) == set(REASONS) - held
