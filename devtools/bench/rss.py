"""Peak memory of each Airflow task process, sampled from outside the task.

Airflow 3 runs each task instance in a process titled ``airflow worker -- <task instance id>`` (the Task SDK
runner: the task's own code) under a supervisor titled ``airflow worker -- LocalExecutor: <task instance id>``
(``airflow supervisor: <id>`` for other executors); the id is the ``id`` of the REST API's task instance.
``TaskMemorySampler`` walks the process tree of an Airflow stack every ``interval_s`` and keeps, per
(role, task instance id), the largest of the resident set size and the kernel's high-water mark (``VmHWM``
in /proc/<pid>/status: the peak since the process started, so a spike between two samples is still seen by
the next sample; only a spike in the last interval before the process exits can be missed). A pooled
executor worker serves task after task under one pid and re-titles itself for each: when its title names a
new task instance, its VmHWM is reset (/proc/<pid>/clear_refs), so one task's peak is not charged to the next.
``attribute_peaks`` turns ids into task names.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

MB = 1024 * 1024
ROLE_TASK = "worker"  # the process running the task's code
ROLE_SUPERVISOR = "supervisor"  # the Task SDK supervisor around it (heartbeats, log and XCom forwarding)
_TITLE = re.compile(
    r"^airflow (?:worker -- (?P<supervisor>[A-Za-z]+Executor(?: \[[^\]]*\])?: )?|supervisor: )"
    r"(?P<ti>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
)


def task_process(cmdline: Iterable[str]) -> tuple[str, str] | None:
    """(role, task instance id) of an Airflow task process from its command line, else None.

    setproctitle rewrites argv, so the title may come back as one string or split on spaces."""
    match = _TITLE.match(" ".join(part for part in cmdline if part).strip())
    if not match:
        return None
    supervisor = match["supervisor"] or match[0].startswith("airflow supervisor")
    return (ROLE_SUPERVISOR if supervisor else ROLE_TASK), match["ti"]


def high_water_mark_bytes(status_text: str) -> int | None:
    """VmHWM (peak resident set size) from the text of /proc/<pid>/status, in bytes; None if absent."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            if unit.lower() != "kb":
                raise ValueError(f"unexpected VmHWM unit {unit!r}")
            return int(value) * 1024
    return None


def attribute_peaks(
    peaks: Mapping[tuple[str, str], int], task_names: Mapping[str, str], role: str = ROLE_TASK
) -> dict[str, float]:
    """{task name: peak MB} for one role. A process whose task instance id is not in ``task_names`` (the
    run's task instances) keeps its id as the name, prefixed ``unknown:``, so nothing is dropped."""
    out: dict[str, float] = {}
    for (proc_role, ti_id), peak in peaks.items():
        if proc_role != role:
            continue
        name = task_names.get(ti_id, f"unknown:{ti_id}")
        out[name] = max(out.get(name, 0.0), round(peak / MB, 1))
    return out


def largest(peaks_mb: Mapping[str, float]) -> tuple[str | None, float | None]:
    """(name, MB) of the largest peak, (None, None) when nothing was sampled."""
    if not peaks_mb:
        return None, None
    name = max(peaks_mb, key=lambda k: peaks_mb[k])
    return name, peaks_mb[name]


class TaskMemorySampler:
    """Samples every task process below ``root_pid`` on a daemon thread until ``stop()``."""

    def __init__(self, root_pid: int, interval_s: float = 0.2) -> None:
        self.root_pid, self.interval_s = root_pid, interval_s
        self.peaks: dict[tuple[str, str], int] = {}
        self.samples = 0
        self.errors = 0
        self.hwm_resets = 0  # pooled processes re-titled for a new task, their peak started afresh
        self.hwm_resets_failed = 0
        self._identity: dict[tuple[int, float], tuple[str, str]] = {}
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="task-rss-sampler", daemon=True)

    def start(self) -> TaskMemorySampler:
        self._thread.start()
        return self

    def stop(self) -> dict[tuple[str, str], int]:
        self.stopped.set()
        self._thread.join(timeout=10)
        return dict(self.peaks)

    def _loop(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
        except psutil.NoSuchProcess:
            return
        while not self.stopped.is_set():
            try:
                children = root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for proc in children:
                self._sample(proc, psutil)
            self.samples += 1
            self.stopped.wait(self.interval_s)

    def _sample(self, proc, psutil) -> None:
        try:
            key = (proc.pid, proc.create_time())
            # the title is read on every sample: a pooled executor worker takes a new title per task
            ident = task_process(proc.cmdline())
            if ident is None:
                return  # not titled yet (the runner titles itself once it has its task instance), or idle
            seen = self._identity.get(key)
            if seen is not None and seen != ident:
                # the same process now serves another task: its kernel peak so far belongs to the earlier one
                self._reset_high_water_mark(proc.pid)
            self._identity[key] = ident
            rss = proc.memory_info().rss
            try:
                hwm = high_water_mark_bytes(Path(f"/proc/{proc.pid}/status").read_text()) or 0
            except OSError:
                hwm = 0
            self.peaks[ident] = max(self.peaks.get(ident, 0), rss, hwm)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self.errors += 1

    def _reset_high_water_mark(self, pid: int) -> None:
        """Reset VmHWM to the current RSS (Linux: write 5 to /proc/<pid>/clear_refs). When the kernel refuses,
        the count says so: the process's later peaks then include its earlier tasks'."""
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.hwm_resets += 1
        except OSError:
            self.hwm_resets_failed += 1
