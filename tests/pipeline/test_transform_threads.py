"""transform's background writer and chunk prefetch: order kept, errors surface, threads end."""

from __future__ import annotations

import threading

import pytest

from creator_sync.pipeline import transform
from creator_sync.pipeline.transform import _Background, _prefetch


def test_background_runs_jobs_in_order_and_reraises_the_first_error():
    done = []
    background = _Background(depth=1)
    for i in range(20):
        background.submit(lambda i=i: done.append(i))
    background.close()
    assert done == list(range(20))

    background = _Background(depth=1)
    background.submit(lambda: 1 / 0)
    background.submit(lambda: done.append("skipped"))  # may or may not see the error yet
    with pytest.raises(ZeroDivisionError):
        for _ in range(5):
            background.submit(lambda: done.append("skipped"))
        background.close()
    background.close()  # raised once; closing again is quiet
    assert "skipped" not in done
    assert not background.thread.is_alive()


def test_prefetch_yields_everything_and_propagates_errors():
    assert list(_prefetch(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("bad parquet")

    with pytest.raises(ValueError, match="bad parquet"):
        list(_prefetch(broken()))

    before = threading.active_count()
    source = _prefetch(iter(range(1000)), depth=1)
    assert next(source) == 0
    source.close()  # the consumer stops early: the producer thread ends
    assert threading.active_count() == before


def test_a_failing_spool_write_fails_the_run_and_cleans_up(fetched, tmp_path, monkeypatch):
    from .factories import END, START

    def fail(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(transform._Spool, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        transform.transform_run(fetched(), start=START, end=END, out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "_spool").exists()
