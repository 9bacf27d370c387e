"""One task attempt: the key its per-attempt figures are stored under (``task_id[map_index]``, try number)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    task_key: str
    try_number: int


def attempt_key(context) -> Attempt:
    """The attempt of the task instance in an Airflow task context."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    task_key = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}[{map_index}]"
    return Attempt(task_key, int(getattr(ti, "try_number", 1) or 1))
