"""Memory of the directory snapshot merge by the number of creators: an hourly run's re-read merged onto a
stored snapshot of N creators.

    python -m devtools.bench.snapshot_merge --creators 100000 [--webhook-accounts 500] [--keep DIR]
        [--full-read]

A child process (not counted) writes the fleet as devtools.bench.transform_creators does (users, one or two
accounts per creator, a profile per account, every column the sandbox renders), stores it as the snapshot
version in force (accounts with their status columns, as a full read leaves them), and writes what an
hourly run re-reads (creator_sync.sync.incremental_fetch.fetch_directory's files): sweep slice 0 of 24 of
users, accounts and profiles, plus `--webhook-accounts` other accounts with a changed status. This process
then runs the transform task's directory step, `incremental_fetch.complete_directory`, and prints its peak
RSS (`VmHWM` of /proc/self/status), the RSS before it (interpreter + imports) and what it wrote. Run it at
two sizes to see the growth. `--keep DIR` builds the fixture there once and keeps it; a later run with the
same DIR merges again onto the same base (the run's retry: `SnapshotStore.base_for`). `--full-read`
measures a full read's directory step instead: the fleet is the run's fetched files, there is no snapshot yet
(the first run), and the step stores it as the first version.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devtools.bench.transform_creators import write_fixture

START = datetime(2024, 5, 1, 0, tzinfo=UTC)  # sweep hour h with h % 24 == 0: slice 0
SLICE = 24
RUN_ID = "scheduled__bench"


def _pages(root: Path, part: str):
    for page in sorted((root / part).glob("*.parquet")):
        yield pq.read_table(page)


def _slice(table: pa.Table) -> pa.Table:
    """Sweep slice 0 of SLICE: every SLICE-th row (the lists' pages, read in that proportion)."""
    return table.take(pa.array(range(0, table.num_rows, SLICE)))


def _changed(accounts: pa.Table, count: int) -> pa.Table:
    """`count` accounts outside the slice (index 1 mod SLICE), disconnected: what webhooks name."""
    rows = accounts.take(pa.array(range(1, min(accounts.num_rows, 1 + SLICE * count), SLICE)))
    status = pa.array(["NOT_CONNECTED"] * rows.num_rows)
    return rows.set_column(rows.column_names.index("status"), "status", status)


def build(root: Path, creators: int, webhook_accounts: int) -> None:
    """The stored snapshot and the run's re-read files (runs in a child process)."""
    from creator_sync.sync import account_status
    from creator_sync.sync.incremental_fetch import READS_DIR
    from creator_sync.sync.run_context import run_dir
    from creator_sync.sync.snapshot import PARTS, SnapshotStore

    fixture = root / "fixture"
    write_fixture(fixture, creators, 0)
    window = (START - timedelta(days=30), START - timedelta(days=30) + timedelta(hours=1))
    parts = {part: _pages(fixture, part) for part in PARTS}
    parts["accounts"] = (account_status.derive(None, page, window) for page in _pages(fixture, "accounts"))
    SnapshotStore().write("scheduled__base", None, parts, now=START - timedelta(hours=1), full_read=PARTS)
    reads = run_dir(RUN_ID) / READS_DIR
    for part in PARTS:
        tables = [_slice(page) for page in _pages(fixture, part)]
        if part == "accounts":
            tables.append(_changed(next(_pages(fixture, part)), webhook_accounts))
        (reads / part).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), reads / part / f"{part}.parquet")


def build_full(creators: int) -> None:
    """A full read's fetched users, accounts and profiles (runs in a child process)."""
    from creator_sync.sync.run_context import run_dir

    write_fixture(run_dir(RUN_ID) / "fetch", creators, 0)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM, kB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--webhook-accounts", type=int, default=500)
    parser.add_argument("--keep", help="build the fixture here once and keep it (default: a temp dir)")
    parser.add_argument("--full-read", action="store_true", help="a full read's step (no snapshot yet)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-merge-") as tmp:
        root = Path(args.keep or tmp)
        fresh = not (root / "data").exists()
        os.environ["CREATOR_SYNC_DATA_URL"] = (root / "data").as_uri()
        os.environ["CREATOR_SYNC_FETCH_MODE"] = "full" if args.full_read else "incremental"
        from creator_sync.sync import incremental_fetch
        from creator_sync.sync.run_context import SyncRun, run_dir

        child = multiprocessing.get_context("fork").Process(
            target=build_full if args.full_read else build,
            args=(args.creators,) if args.full_read else (root, args.creators, args.webhook_accounts),
        )
        began = time.perf_counter()
        if fresh:
            child.start()
            child.join()
        if child.exitcode:
            raise RuntimeError(f"fixture writer failed ({child.exitcode})")
        built = time.perf_counter() - began
        run = SyncRun(RUN_ID, START, START + timedelta(hours=1), False, False, (), 0, "scheduled")
        rss_before = peak_rss_mb()
        began = time.perf_counter()
        done = incremental_fetch.complete_directory(run)
        elapsed = time.perf_counter() - began
        reads = run_dir(RUN_ID) / incremental_fetch.READS_DIR
        out = {
            "creators": args.creators,
            "kind": done["kind"],
            "sizes": done.get("sizes"),
            "re_read_rows": {
                p: _rows(reads / p / f"{p}.parquet") if reads.exists() else 0
                for p in ("users", "accounts", "profiles")
            },
            "fixture_s": round(built, 1),
            "seconds": round(elapsed, 1),
            "peak_rss_mb_before_merge": round(rss_before),
            "peak_rss_mb": round(peak_rss_mb()),
            "disconnected_in_fetch_files": _disconnected(run_dir(RUN_ID) / "fetch" / "accounts"),
        }
    print(json.dumps(out))
    return out


def _disconnected(directory: Path) -> int:
    """NOT_CONNECTED accounts in the run's fetch files (the webhook accounts: the re-read rows won)."""
    count = 0
    for path in directory.glob("*.parquet"):
        for batch in pq.ParquetFile(path).iter_batches(columns=["status"]):
            count += pc.sum(pc.equal(batch["status"], "NOT_CONNECTED")).as_py() or 0
    return count


if __name__ == "__main__":
    main()
