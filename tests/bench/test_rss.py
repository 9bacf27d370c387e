"""Peak memory per Airflow task process: process-title parsing, VmHWM, attribution, and the sampler on a
real child process that titles itself like a Task SDK worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from devtools.bench import rss
from devtools.bench.rss import (
    MB,
    ROLE_SUPERVISOR,
    ROLE_TASK,
    TaskMemorySampler,
    attribute_peaks,
    high_water_mark_bytes,
    largest,
    task_process,
)

TI = "0196f1c2-7a3b-7c4d-8e5f-0123456789ab"


@pytest.mark.parametrize(
    "cmdline,expected",
    [
        ([f"airflow worker -- {TI}"], (ROLE_TASK, TI)),
        (["airflow", "worker", "--", TI], (ROLE_TASK, TI)),  # the title split on spaces
        ([f"airflow supervisor: {TI}", "", ""], (ROLE_SUPERVISOR, TI)),  # padded argv
        ([f"airflow worker -- LocalExecutor: {TI}"], (ROLE_SUPERVISOR, TI)),
        ([f"airflow worker -- LocalExecutor [team-a]: {TI}"], (ROLE_SUPERVISOR, TI)),
        (["airflow worker -- LocalExecutor: <idle>"], None),  # the executor's idle worker, not a task
        (["airflow scheduler"], None),
        (["/venv/bin/python", "-m", "devtools.sandbox"], None),
        ([], None),
    ],
)
def test_task_process_reads_role_and_task_instance_id_from_the_title(cmdline, expected):
    assert task_process(cmdline) == expected


def test_high_water_mark_is_vmhwm_in_bytes():
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
    assert high_water_mark_bytes(status) == 123456 * 1024
    assert high_water_mark_bytes("Name:\tkthreadd\n") is None
    with pytest.raises(ValueError):
        high_water_mark_bytes("VmHWM:\t 12 MB\n")


def test_peaks_are_attributed_per_task_name_and_role_and_unknown_ids_are_kept():
    other = "0196f1c2-0000-7c4d-8e5f-0123456789ab"
    peaks = {
        (ROLE_TASK, TI): 300 * MB,
        (ROLE_SUPERVISOR, TI): 90 * MB,
        (ROLE_TASK, other): 1200 * MB,
    }
    names = {TI: "transform"}
    tasks = attribute_peaks(peaks, names)
    assert tasks == {"transform": 300.0, f"unknown:{other}": 1200.0}
    assert attribute_peaks(peaks, names, ROLE_SUPERVISOR) == {"transform": 90.0}
    assert largest(tasks) == (f"unknown:{other}", 1200.0)
    assert largest({}) == (None, None)


CHILD = f"""
import sys, time, setproctitle
setproctitle.setproctitle("airflow worker -- {TI}")
block = bytearray(200 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])
del block
print("freed", flush=True)
time.sleep(5)
"""


def sample_after_free(monkeypatch=None) -> dict:
    """Start sampling only once the child has touched and freed ~200 MB: only VmHWM can show it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "freed"
        sampler = TaskMemorySampler(os.getpid(), interval_s=0.2).start()
        time.sleep(1.0)
        peaks = sampler.stop()
        assert sampler.samples >= 2
    finally:
        child.kill()
        child.wait(10)
    return peaks


def test_sampler_sees_the_peak_of_a_task_process_that_has_freed_its_memory():
    assert sample_after_free()[(ROLE_TASK, TI)] >= 200 * MB


def test_without_the_high_water_mark_the_freed_peak_is_missed(monkeypatch):
    """The guard switched off: sampling RSS alone misses a peak between two samples."""
    monkeypatch.setattr(rss, "high_water_mark_bytes", lambda text: None)
    assert sample_after_free()[(ROLE_TASK, TI)] < 100 * MB


TI2 = "0196f1c2-7a3b-7c4d-8e5f-fedcba987654"
POOLED = f"""
import sys, time, setproctitle
setproctitle.setproctitle("airflow worker -- LocalExecutor: {TI}")
block = bytearray(200 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])
del block
print("first task done", flush=True)
sys.stdin.readline()
setproctitle.setproctitle("airflow worker -- LocalExecutor: {TI2}")
print("second task", flush=True)
time.sleep(5)
"""


def sample_pooled_worker() -> dict:
    """One process serves two tasks (a pooled executor worker): the first touches ~200 MB, the second none."""
    child = subprocess.Popen(
        [sys.executable, "-c", POOLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "first task done"
        sampler = TaskMemorySampler(os.getpid(), interval_s=0.1).start()
        time.sleep(0.5)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "second task"
        time.sleep(0.5)
        peaks = sampler.stop()
    finally:
        child.kill()
        child.wait(10)
    return peaks


def test_a_pooled_worker_s_next_task_does_not_inherit_the_previous_task_s_peak():
    peaks = sample_pooled_worker()
    assert peaks[(ROLE_SUPERVISOR, TI)] >= 200 * MB
    assert peaks[(ROLE_SUPERVISOR, TI2)] < 100 * MB


def test_without_the_reset_the_next_task_is_charged_the_previous_peak(monkeypatch):
    """The guard switched off: the kernel's peak is per process, so the second task shows the first's."""
    monkeypatch.setattr(TaskMemorySampler, "_reset_high_water_mark", lambda self, pid: None)
    assert sample_pooled_worker()[(ROLE_SUPERVISOR, TI2)] >= 200 * MB
