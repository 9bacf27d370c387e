"""Which bench sections run, and how their figures land in the results (the section functions stubbed: the
sections themselves are measured by `make bench`, not here)."""

from __future__ import annotations

import pytest

from devtools.bench import cli, scale, webhook_latency

SCALE = {"creators": 10_000, "wall_s": 12.0, "peak_rss_mb": 300.0, "reconciled": True}
WEBHOOK = {"creators": 10_000, "p50_s": 20.0, "p95_s": 40.0, "changes_sent": 83}


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, dict]] = []

    def fake_webhook(creators, **kwargs):
        seen.append(("webhook_latency", kwargs))
        return {**WEBHOOK, **({"scale": dict(SCALE)} if kwargs.get("scale") else {})}

    def fake_scale(creators, rate, **kwargs):
        seen.append(("scale", {"rate": rate}))
        return dict(SCALE)

    monkeypatch.setattr(webhook_latency, "run_webhook_latency", fake_webhook)
    monkeypatch.setattr(scale, "run_scale", fake_scale)
    return seen


def test_scale_and_webhook_latency_together_sync_one_fleet(calls):
    measured = cli.run(quick=True, only={"scale", "webhook_latency"})
    assert [name for name, _ in calls] == ["webhook_latency"]
    assert calls[0][1]["scale"] is True
    assert calls[0][1]["baseline_rate"] == cli.SIZES["scale_insightiq_rate"][0]
    assert measured["e2e_100k_wall_s"] == 12.0 and measured["e2e_100k_reconciled"] is True
    assert measured["webhook_to_insider_p95_s"] == 40.0
    assert "scale_webhook_latency_section_s" in measured
    assert not [k for k in measured if k.endswith("_error")]


@pytest.mark.parametrize("only", [{"scale"}, {"webhook_latency"}])
def test_either_section_alone_runs_its_own_stack(calls, only):
    measured = cli.run(quick=True, only=only)
    assert [name for name, _ in calls] == list(only)
    assert "scale" not in calls[0][1] or calls[0][1].get("scale") is not True
    key = "e2e_100k_wall_s" if only == {"scale"} else "webhook_to_insider_p95_s"
    assert measured[key] is not None
