from __future__ import annotations

from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.transform import TransformStats


def test_reconciliation_holds_and_renders():
    stats = TransformStats(fetched_creators=10, users_written=8)
    send = SendReport(users_sent=5, unchanged=3, rejected={"malformed_email": 2}, requests=1, events_sent=7)
    summary = build_summary("r1", stats, send, {"retries": 2, "rate_limited_429": 1})
    assert summary.reconciled
    text = summary.render()
    assert "Reconciliation holds" in text and "malformed_email: 2" in text and "429s: 1" in text
    assert summary.as_dict()["rejected_total"] == 2


def test_reconciliation_gap_is_said_plainly():
    summary = build_summary("r1", TransformStats(fetched_creators=10), SendReport(users_sent=4, unchanged=3))
    assert not summary.reconciled
    assert (
        "RECONCILIATION DOES NOT HOLD" in summary.render()
        and "3 creator(s) unaccounted for" in summary.render()
    )
