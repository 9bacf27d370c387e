"""Transform throughput and memory on synthetic content rows.

    python -m devtools.bench.transform_data --rows 1000000 [--creators 20000] [--chunk-rows 100000]

Generates `--rows` content items (all inside the interval, the worst case: every row becomes an event) for
`--creators` creators, writes them as Parquet in the fetch contract's shape, runs `transform_run` and prints
rows/s and the process's peak RSS. Run it at two sizes (e.g. 100000 and 1000000) to see memory stay flat.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from creator_sync.pipeline.transform import transform_run

START = datetime(2024, 5, 1, tzinfo=UTC)
END = datetime(2024, 5, 2, tzinfo=UTC)
PLATFORMS = np.array(["Instagram", "YouTube", "TikTok", "X (Twitter)"])


def write_fixture(
    root: Path, rows: int, creators: int, rows_per_file: int = 200_000
) -> dict[str, list[Path]]:
    rng = np.random.default_rng(7)
    uuids = np.array([f"user-{i:07d}" for i in range(creators)])
    pq.write_table(
        pa.table({"id": uuids, "name": uuids, "external_id": np.char.add("ext-", uuids)}),
        root / "users.parquet",
    )
    emails = [json.dumps([{"type": "WORK", "email_id": f"{u}@example.com"}]) for u in uuids]
    pq.write_table(
        pa.table(
            {
                "id": np.char.add("p-", uuids),
                "user.id": uuids,
                "account.id": np.char.add("a-", uuids),
                "work_platform.name": PLATFORMS[np.arange(creators) % len(PLATFORMS)],
                "first_name": uuids,
                "country": ["GB"] * creators,
                "language": ["en"] * creators,
                "emails": emails,
                "reputation.follower_count": rng.integers(0, 10**6, creators),
                "updated_at": ["2024-04-01T00:00:00Z"] * creators,
            }
        ),
        root / "profiles.parquet",
    )
    for part, offset in enumerate(range(0, rows, rows_per_file)):
        n = min(rows_per_file, rows - offset)
        owner = rng.integers(0, creators, n)
        seconds = rng.integers(0, 86_400, n)
        published = (np.datetime64("2024-05-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str)
        ids = np.char.add("content-", np.arange(offset, offset + n).astype(str))
        table = pa.table(
            {
                "id": ids,
                "user.id": uuids[owner],
                "account.id": np.char.add("a-", uuids[owner]),
                "work_platform.name": PLATFORMS[owner % len(PLATFORMS)],
                "title": np.char.add("A video about things #", ids),
                "format": ["VIDEO"] * n,
                "type": ["REELS"] * n,
                "url": np.char.add("https://example.com/", ids),
                "published_at": np.char.add(published, "Z"),
                "engagement.like_count": rng.integers(0, 10_000, n),
                "engagement.comment_count": rng.integers(0, 500, n),
                "engagement.view_count": rng.integers(0, 10**6, n),
                "engagement.share_count": rng.integers(0, 100, n),
            }
        )
        pq.write_table(table, root / f"contents-{part:04d}.parquet")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--creators", type=int, default=20_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
        root = Path(tmp)
        # the fixture is generated in a child process, so its memory is not in this process's peak RSS
        child = multiprocessing.get_context("fork").Process(
            target=write_fixture, args=(root, args.rows, args.creators)
        )
        child.start()
        child.join()
        inputs = {
            "users": [root / "users.parquet"],
            "profiles": [root / "profiles.parquet"],
            "contents": sorted(root.glob("contents-*.parquet")),
        }
        rss_before = peak_rss_mb()
        began = time.perf_counter()
        result = transform_run(inputs, start=START, end=END, out_dir=root / "out", chunk_rows=args.chunk_rows)
        elapsed = time.perf_counter() - began
        out = {
            "rows": args.rows,
            "creators": args.creators,
            "chunk_rows": args.chunk_rows,
            "seconds": round(elapsed, 2),
            "rows_per_s": round(args.rows / elapsed),
            "peak_rss_mb_before_transform": round(rss_before),
            "peak_rss_mb": round(peak_rss_mb()),
            "events_written": result.stats.events_written,
            "users_written": result.stats.users_written,
            "output_mb": round(result.users_path.stat().st_size / 2**20, 1),
        }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
