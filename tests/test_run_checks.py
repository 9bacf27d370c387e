"""The rejection-rate check that fails creator_sync's report task."""

from __future__ import annotations

import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.run_checks import (
    MIN_CREATORS_FOR_RATE,
    fail_on_rejection_rate,
    max_rejection_rate,
    rejection_rate_problem,
)


def test_at_the_limit_passes_above_it_fails_with_the_reasons():
    assert rejection_rate_problem(20, {"malformed_email": 4}, 0.2) is None
    problem = rejection_rate_problem(20, {"malformed_email": 4, "non_e164_phone": 2}, 0.2)
    assert problem.startswith("REJECTION RATE 30.0% is above the limit 20%")
    assert "6 of 20 fetched creators" in problem and "malformed_email: 4, non_e164_phone: 2" in problem
    assert rejection_rate_problem(0, {}, 0.2) is None  # nothing fetched: no rate


def test_a_run_of_a_few_creators_is_not_judged_by_its_rate():
    """A webhook run of one invalid creator is 100% rejected; a rate over so few says nothing."""
    few = MIN_CREATORS_FOR_RATE - 1
    assert rejection_rate_problem(1, {"malformed_email": 1}, 0.2) is None
    assert rejection_rate_problem(few, {"malformed_email": few}, 0.2) is None
    assert rejection_rate_problem(MIN_CREATORS_FOR_RATE, {"malformed_email": 5}, 0.2) is not None


def test_the_report_task_fails_without_retry_above_the_default(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("CREATOR_SYNC_MAX_REJECTION_RATE", raising=False)
    fail_on_rejection_rate(100, {"malformed_email": 20})
    with pytest.raises(AirflowFailException, match=r"REJECTION RATE 21\.0%"):
        fail_on_rejection_rate(100, {"malformed_email": 21})
    monkeypatch.setenv("CREATOR_SYNC_MAX_REJECTION_RATE", "1")  # the check switched off: the run stays green
    fail_on_rejection_rate(100, {"malformed_email": 90})


@pytest.mark.parametrize(("raw", "rate"), [("", 0.2), ("0.05", 0.05), ("35%", 0.35), ("1", 1.0)])
def test_setting(raw, rate):
    assert max_rejection_rate({"CREATOR_SYNC_MAX_REJECTION_RATE": raw}) == pytest.approx(rate)


@pytest.mark.parametrize("raw", ["lots", "1.5", "-0.1", "150%"])
def test_a_bad_setting_says_how_to_fix_it(raw):
    with pytest.raises(CreatorSyncConfigError, match="allowed is a fraction between 0 and 1"):
        max_rejection_rate({"CREATOR_SYNC_MAX_REJECTION_RATE": raw})
