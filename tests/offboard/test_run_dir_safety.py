"""Run ids become directory names: hostile ids (`.`, `..`, separators, unicode) never reach outside their
own directory, and a delete never leaves its parent. With both guards switched off the attack from issue 24
succeeds (the test proves it), with either one on it does not."""

from __future__ import annotations

import re

import pytest

from creator_sync import storage
from creator_sync.offboard import steps
from creator_sync.store import StateStore
from creator_sync.sync import run_context


def _old_run_dir_name(run_id: str) -> str:
    """The encoding before the guard: unsafe characters replaced, dots kept."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


@pytest.fixture
def data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{data}")
    data.mkdir()
    (data / "state.db").write_text("skip list, snapshot index")
    other = steps.work_dir("manual__other")
    (other / "candidates.jsonl").write_text('{"user_id": "u1"}\n')
    return data


def _ok_report(run_id: str, store: StateStore) -> dict:
    run = steps.OffboardRun.from_params(run_id, {})
    return steps.report(run, {"kept": [], "unresolved": []}, {"outcomes": {}, "failures": []}, store)


def _no_under_parent_check(monkeypatch) -> None:
    monkeypatch.setattr(storage, "check_under", lambda parent, path: None)
    monkeypatch.setattr(storage, "child", lambda parent, name: parent / name)


def _switch_off(monkeypatch, guard: str) -> None:
    if guard in ("encoding", "both"):
        monkeypatch.setattr(run_context, "run_dir_name", _old_run_dir_name)
    if guard in ("under_parent", "both"):
        _no_under_parent_check(monkeypatch)


@pytest.mark.parametrize("run_id", [".", ".."])
@pytest.mark.parametrize("off", ["none", "encoding", "under_parent", "both"])
def test_an_offboard_run_named_dot_or_dotdot_deletes_only_its_own_files(
    data, tmp_path, monkeypatch, run_id, off
):
    store = StateStore(f"sqlite:///{tmp_path / 'reports.db'}")
    _switch_off(monkeypatch, off)
    other = data / "offboard" / "manual__other" / "candidates.jsonl"
    if off == "both":  # the attack of issue 24: another run's candidates (or the whole data dir) are gone
        _ok_report(run_id, store)
        assert not other.exists()
        assert (data / "state.db").exists() is (run_id == ".")
        return
    try:
        _ok_report(run_id, store)
    except storage.UnsafePathError:  # only the under-parent check is on: the run fails, nothing deleted
        assert off == "encoding"
    assert other.exists() and (data / "state.db").exists()


HOSTILE = [
    ".",
    "..",
    "a/b",
    "a\\b",
    "../x",
    "/etc",
    ".hidden",
    "-",
    "",
    "~",
    "é",
    "日本語",
    "a\x00b",
    "x" * 300,
]


@pytest.mark.parametrize("run_id", HOSTILE)
def test_every_run_dir_is_a_plain_child_of_runs(tmp_path, monkeypatch, run_id):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    name = run_context.run_dir_name(run_id)
    assert name not in (".", "..") and not set(name) & set("/\\\x00") and not name.startswith(".")
    assert len(name.encode()) <= 120
    directory = run_context.run_dir(run_id)
    assert directory.parent == tmp_path / "data" / "runs" and directory.is_dir()


def test_a_creator_sync_run_named_dot_without_the_encoding_writes_into_runs_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / 'data'}")
    runs = (tmp_path / "data" / "runs").resolve()
    assert run_context.run_dir(".").resolve() != runs
    monkeypatch.setattr(run_context, "run_dir_name", _old_run_dir_name)
    with pytest.raises(storage.UnsafePathError):  # the under-parent check alone still refuses it
        run_context.run_dir(".")
    _no_under_parent_check(monkeypatch)
    assert run_context.run_dir(".").resolve() == runs  # both off: the attack of issue 24


def test_names_are_distinct_and_plain_ids_keep_their_name():
    ids = ["a/b", "a_b", "a:b", "a b", "A/B", ".", "..", "é", "e"]
    names = [run_context.run_dir_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert (
        run_context.run_dir_name("a_b") == "a_b"
        and run_context.run_dir_name("scheduled__a") == "scheduled__a"
    )
    tricky = run_context.run_dir_name("a/b")  # a plain id cannot take the encoded name of another
    assert "~" in tricky and run_context.run_dir_name(tricky) != tricky


def test_a_delete_outside_its_parent_is_refused(tmp_path):
    parent = tmp_path / "runs"
    (parent / "r1").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (parent / "link").symlink_to(outside)
    for path in (parent, parent / "..", parent / "r1" / ".." / "..", parent / "link"):
        with pytest.raises(storage.UnsafePathError):
            storage.remove_tree(path, parent=parent)
    assert outside.exists() and (parent / "r1").exists()
    storage.remove_tree(parent / "r1", parent=parent)
    assert not (parent / "r1").exists()
    for name in (".", "..", "a/b", "", "a\\b"):
        with pytest.raises(storage.UnsafePathError):
            storage.child(parent, name)
