"""The state store contract, on SQLite and on PostgreSQL (one throw-away database per test session; with
CI=true a missing PostgreSQL fails these tests instead of skipping them)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from creator_sync.store import StateStore
from creator_sync.store import engine as engine_mod
from creator_sync.store import schema as state_mod
from devtools.services import require_postgres


@pytest.fixture(scope="session")
def postgres_state_db():
    from devtools.celery_stack import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, unique_name

    require_postgres("the state store contract tests on PostgreSQL")
    name = unique_name("cs_state_contract")
    create_database(name)
    url = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    yield url
    sa.create_engine(url).dispose()
    drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    """An empty state store database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url = request.getfixturevalue("postgres_state_db")
    engine = sa.create_engine(url)
    state_mod.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    yield url


def test_default_url_uses_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("CREATOR_SYNC_STATE_URL", raising=False)
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path}/data")
    assert engine_mod.state_url() == f"sqlite:///{tmp_path}/data/state.db"
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", "postgresql+psycopg2://x/y")
    assert engine_mod.state_url() == "postgresql+psycopg2://x/y"


def test_default_url_agrees_with_the_run_files_and_refuses_a_non_file_data_url(monkeypatch, tmp_path):
    import pytest

    from creator_sync.sync.run_context import data_base, local_dir

    monkeypatch.delenv("CREATOR_SYNC_STATE_URL", raising=False)
    monkeypatch.delenv("CREATOR_SYNC_DATA_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert engine_mod.default_data_dir() == local_dir(data_base()) == tmp_path / "home" / "data"
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", "s3://bucket/creator-sync")
    with pytest.raises(ValueError, match="CREATOR_SYNC_STATE_URL"):
        engine_mod.state_url()
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", "postgresql+psycopg2://x/y")
    assert engine_mod.state_url() == "postgresql+psycopg2://x/y"  # the state store does not need the data dir


def test_writes_are_idempotent(state_url):
    store = StateStore(state_url)
    for attempt in range(2):
        store.record_batch(
            run_id="r",
            batch_key=f"b{attempt}",
            events=[("k1", "u1"), ("k2", "u1")],
            hashes=[("u1", f"h{attempt}")],
            failures=[{"user_key": "u2", "reason": "vendor_rejected", "detail": "x", "payload": {"a": 1}}],
        )
    assert store.acknowledged(["k1", "k2", "k3"]) == {"k1", "k2"}
    assert store.attribute_hashes(["u1"])["u1"][0] == "h1"  # last acknowledged wins
    assert store.count_dead_letters() == {"vendor_rejected": 1}
    letter = store.dead_letters()[0]
    store.mark_replayed([letter.id])
    assert store.dead_letters() == [] and len(store.dead_letters(pending_only=False)) == 1


def test_four_parallel_writers(state_url):
    url = state_url
    StateStore(url)
    errors = []

    def writer(n: int) -> None:
        store = StateStore(url)  # own engine, like a separate task process
        try:
            for batch in range(25):
                keys = [(f"k{batch}-{i}", f"u{i}") for i in range(40)]  # every writer writes the same keys
                store.record_batch(run_id=f"r{n}", batch_key=f"{n}-{batch}", events=keys,
                                   hashes=[(f"u{n}", f"h{batch}")], failures=[])  # fmt: skip
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = StateStore(url)
    assert len(store.acknowledged(f"k{b}-{i}" for b in range(25) for i in range(40))) == 1000
    assert {k: v[0] for k, v in store.attribute_hashes([f"u{n}" for n in range(4)]).items()} == {
        f"u{n}": "h24" for n in range(4)
    }


def test_run_reports_are_replaced_by_a_retried_report_and_listed_newest_first(state_url):
    state = StateStore(state_url)
    state.save_run_report("creator_sync", "run-1", {"sent": 1}, "first attempt", ok=False)
    state.save_run_report("creator_sync", "run-1", {"sent": 2}, "second attempt", ok=True)
    state.save_run_report("creator_sync_replay", "run-2", {"sent": 3}, "replay", ok=True)
    reports = state.run_reports()
    assert [(r["dag_id"], r["run_id"]) for r in reports] == [
        ("creator_sync_replay", "run-2"),
        ("creator_sync", "run-1"),
    ]
    assert (
        reports[1]["figures"] == {"sent": 2} and reports[1]["text"] == "second attempt" and reports[1]["ok"]
    )
    assert [r["run_id"] for r in state.run_reports(dag_id="creator_sync")] == ["run-1"]
