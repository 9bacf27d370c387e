from __future__ import annotations

from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.transform import TransformStats

VENDORS = {
    "InsightIQ": {"requests": 40, "retries": 3, "rate_limited_429": 2},
    "Insider": {"requests": 2, "retries": 1, "rate_limited_429": 0},
}


def test_reconciliation_holds_and_renders_one_row_per_vendor():
    stats = TransformStats(fetched_creators=10, users_written=8)
    send = SendReport(users_sent=5, unchanged=3, rejected={"malformed_email": 2}, requests=1, events_sent=7)
    summary = build_summary("r1", stats, send, vendors=VENDORS)
    assert summary.reconciled
    text = summary.render()
    assert "| |" not in text and "| figure | count |" in text
    assert "| InsightIQ | 40 | 3 | 2 |" in text and "| Insider | 2 | 1 | 0 |" in text
    assert "malformed_email: 2" in text
    last = text.splitlines()[-1]
    assert last.startswith("Reconciliation holds:") and "request" not in last  # its own line
    assert (summary.retried_requests, summary.rate_limited_429) == (4, 2)
    assert summary.as_dict()["rejected_total"] == 2


def test_reconciliation_gap_is_said_plainly():
    summary = build_summary("r1", TransformStats(fetched_creators=10), SendReport(users_sent=4, unchanged=3))
    assert not summary.reconciled
    assert (
        "RECONCILIATION DOES NOT HOLD" in summary.render()
        and "3 creator(s) unaccounted for" in summary.render()
    )


def test_users_claimed_by_another_run_are_accounted_for():
    send = SendReport(users_sent=4, unchanged=3, claimed_elsewhere=3)
    summary = build_summary("r1", TransformStats(fetched_creators=10), send)
    assert summary.reconciled and "3 claimed by another run" in summary.reconciliation_line()


def test_dry_run_says_so_first_and_reconciles():
    stats = TransformStats(fetched_creators=10, users_written=8, rejected={"malformed_email": 2})
    send = SendReport(users_sent=8, events_sent=30, requests=1, rejected={"malformed_email": 2}, dry_run=True)
    summary = build_summary("r1", stats, send)
    text = summary.render()
    assert text.splitlines()[0] == (
        "**DRY RUN: would send 8 users, 30 events in 1 requests; unchanged 0; rejected 2. "
        "Nothing was sent or recorded.**"
    )
    assert summary.reconciled and "8 would send" in summary.reconciliation_line()


def test_malformed_source_records_are_listed():
    stats = TransformStats(fetched_creators=1, malformed_records={"contents": 2, "users": 1})
    summary = build_summary("r1", stats, SendReport(rejected={"malformed_source_record": 1}))
    assert summary.reconciled
    assert "malformed_source_record): contents: 2, users: 1." in summary.render()


# The report task's imports (creator_sync_dag.report -> sync.steps.report_step), then the transform's (the
# control: it does load pandas), in one fresh interpreter: the heavy modules each step added.
REPORT_IMPORTS_PROBE = """
import json, sys
heavy = ("pandas", "pyarrow", "numpy")
import creator_sync.pipeline.report, creator_sync.run_checks, creator_sync.store, creator_sync.sync.run_note
import creator_sync.sync.steps
report = [m for m in heavy if m in sys.modules]
import creator_sync.pipeline.transform
print("RESULT " + json.dumps({"report": report, "transform": [m for m in heavy if m in sys.modules]}))
"""


def test_the_report_step_loads_no_dataframe_library():
    """The report reads the transform's figures and the state store: its task process loads neither pandas
    nor pyarrow (about a second of a task start on a loaded machine). The control: importing the
    transform in the same interpreter does load them, so the probe sees such an import."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", REPORT_IMPORTS_PROBE], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-3000:]
    found = json.loads(lines[-1][len("RESULT ") :])
    assert found["report"] == [], found
    assert {"pandas", "pyarrow"} <= set(found["transform"]), found
