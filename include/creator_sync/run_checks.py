"""Checks that fail a finished run's report task, so a bad run is red in the UI and alerts (not an INFO line).

- rejection rate: rejected creators / fetched creators above `CREATOR_SYNC_MAX_REJECTION_RATE` (a fraction,
  default 0.2 = 20%; 1 turns the check off). A jump in rejections means the data or the mapping changed.
  A run of fewer than MIN_CREATORS_FOR_RATE creators (e.g. a webhook run of one creator) is not judged: one
  invalid creator would be 100% of it. Its rejected creators are dead letters with their reasons all the same.
"""

from __future__ import annotations

MAX_REJECTION_RATE_ENV = "CREATOR_SYNC_MAX_REJECTION_RATE"
MIN_CREATORS_FOR_RATE = 20


def max_rejection_rate(environ: dict[str, str] | None = None) -> float:
    from creator_sync import settings

    return settings.load(environ).max_rejection_rate


def rejection_rate_problem(fetched: int, rejected: dict[str, int], limit: float | None = None) -> str | None:
    """A message when more than `limit` of the fetched creators were rejected, else None."""
    limit = max_rejection_rate() if limit is None else limit
    total = sum(rejected.values())
    if fetched < MIN_CREATORS_FOR_RATE or total / fetched <= limit:
        return None
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(rejected.items(), key=lambda r: -r[1]))
    return (
        f"REJECTION RATE {total / fetched:.1%} is above the limit {limit:.0%} ({MAX_REJECTION_RATE_ENV}): "
        f"{total} of {fetched} fetched creators were rejected ({reasons}). The rejected users are dead "
        f"letters with their reasons: fix the data upstream or the mapping, then run creator_sync_replay."
    )


def fail_on_rejection_rate(fetched: int, rejected: dict[str, int]) -> None:
    """Fail the task (no retry: a retry cannot change the rate) when the rejection rate is too high."""
    problem = rejection_rate_problem(fetched, rejected)
    if problem:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(problem)
