"""devtools.docs_check (make lint): the docs as they are pass, and each kind of false statement is caught."""

from __future__ import annotations

from devtools import docs_check


def test_the_docs_pass():
    assert docs_check.problems() == []


def test_each_kind_of_false_statement_is_caught(tmp_path):
    doc = docs_check.REPO / "docs" / "_docs_check_probe.md"
    unknown = "CREATOR_SYNC_" + "NO_SUCH_SETTING"  # split: this file is among those the check reads
    doc.write_text(
        f"Set `{unknown}`, run `make no-such-target`, read `include/creator_sync/nope.py`,\n"
        "see [the guide](no-such-file.md), trigger the `no_such_dag` DAG. The sender previously retried.\n"
        "Fine: `CREATOR_SYNC_FETCH_MODE`, `make lint`, `include/creator_sync/settings.py`,\n"
        "the `creator_sync` DAG.\n"
    )
    try:
        found = docs_check.problems([doc])
    finally:
        doc.unlink()
    assert len(found) == 6, found
    for expected in (
        "NO_SUCH_SETTING",
        "no-such-target",
        "nope.py",
        "no-such-file.md",
        "no_such_dag",
        "previously",
    ):
        assert any(expected in problem for problem in found), expected
