"""Transform memory by the number of creators, on synthetic runs shaped like the fetch's files.

    python -m devtools.bench.transform_creators --creators 100000 [--contents-per-account 2]

Writes users, accounts and profiles with every column the InsightIQ sandbox renders (devtools/sandbox/
records.py: about 30 profile and 20 account columns, of which the transform reads 16 and 3), one or two
accounts per creator, and `--contents-per-account` contents inside the interval per account, as Parquet pages
of 100,000 rows (the fixture is written by a child process, so its memory is not counted); then runs
`transform_run` in this process and prints its peak RSS (`ru_maxrss`), the RSS before the transform
(interpreter + imports) and the transform's buckets. Run it at two sizes to see the growth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from devtools.bench.transform_data import END, PLATFORMS, START

PAGE = 100_000


def _s(prefix: str, values: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, values.astype(str))


def _uid(c: np.ndarray) -> np.ndarray:
    # InsightIQ ids are UUIDs: spread over the id space, so the user-id order is not the creation order
    h = (c.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(16)
    return np.char.add(np.char.zfill(np.char.mod("%012x", h), 12), _s("-u-", c))


def _write_page(root: Path, lo: int, hi: int, contents_per_account: int) -> None:
    rng = np.random.default_rng(lo)
    c = np.arange(lo, hi)
    n = len(c)
    uid = _uid(c)
    name = _s("Creator", c)
    pq.write_table(
        pa.table(
            {
                "id": uid,
                "name": name,
                "external_id": _s("cs-", c),
                "created_at": ["2024-01-01T00:00:00Z"] * n,
                "updated_at": ["2024-01-02T00:00:00Z"] * n,
            }
        ),
        root / "users" / f"page-{lo:08d}.parquet",
    )
    # one account per creator, a second one for every other creator
    owner = np.concatenate([c, c[c % 2 == 0]])
    a = np.arange(len(owner)) + 2 * lo
    m = len(owner)
    auid = _uid(owner)
    acc_id = _s("acc-", a)
    platform = PLATFORMS[a % len(PLATFORMS)]
    username = np.char.add(_s("creator", owner), _s("_", a))
    ts = ["2024-04-20T10:00:00Z"] * m
    accounts = {
        "id": acc_id,
        "created_at": ts,
        "updated_at": ts,
        "user.id": auid,
        "user.name": _s("Creator ", owner),
        "work_platform.id": _s("wp-", a % len(PLATFORMS)),
        "work_platform.name": platform,
        "work_platform.logo_url": np.char.add("https://logos.example.com/", platform),
        "platform_username": username,
        "platform_profile_name": _s("Creator ", owner),
        "platform_profile_id": rng.integers(10**9, 10**10, m).astype(str),
        "profile_pic_url": np.char.add(_s("https://images.example.com/avatars/", a), ".jpg"),
        "status": ["CONNECTED"] * m,
        "last_sync_end_at": ts,
    }
    for product in ("identity", "engagement", "income"):
        accounts[f"data.{product}.status"] = ["SYNCED"] * m
        accounts[f"data.{product}.monitoring_type"] = ["STANDARD"] * m
        accounts[f"data.{product}.last_sync_at"] = ts
    pq.write_table(pa.table(accounts), root / "accounts" / f"page-{lo:08d}.parquet")
    emails = [json.dumps([{"type": "WORK", "email_id": f"{u}@example.com"}]) for u in username]
    phones = [json.dumps([{"type": "PERSONAL", "phone_number": f"+4477009{i % 100000:05d}"}]) for i in a]
    profiles = {
        "id": _s("prof-", a),
        "user.id": auid,
        "user.name": _s("Creator ", owner),
        "account.id": acc_id,
        "account.platform_username": username,
        "work_platform.id": _s("wp-", a % len(PLATFORMS)),
        "work_platform.name": platform,
        "work_platform.logo_url": np.char.add("https://logos.example.com/", platform),
        "username": username,
        "full_name": _s("Creator Number", owner),
        "first_name": _s("Creator", owner),
        "last_name": _s("Number", owner),
        "nick_name": [None] * m,
        "url": np.char.add("https://www.example.com/", username),
        "image_url": np.char.add(_s("https://images.example.com/avatars/", a), ".jpg"),
        "introduction": np.char.add(_s("Creator", owner), " creates travel and food content."),
        "country": np.array(["GB", "DE", "US", "TR"])[owner % 4],
        "gender": np.array(["female", "male"])[owner % 2],
        "language": np.array(["en", "de", "tr"])[owner % 3],
        "date_of_birth": [None] * m,
        "reputation.follower_count": rng.integers(100, 10**7, m),
        "reputation.following_count": rng.integers(0, 3000, m),
        "reputation.subscriber_count": rng.integers(0, 10**6, m),
        "reputation.content_count": np.full(m, contents_per_account),
        "reputation.content_group_count": rng.integers(0, 50, m),
        "reputation.watch_time_in_hours": rng.uniform(10, 1e5, m),
        "emails": emails,
        "phone_numbers": phones,
        "addresses": ["[]"] * m,
        "is_verified": rng.random(m) < 0.2,
        "is_business": rng.random(m) < 0.3,
        "created_at": ts,
        "updated_at": ts,
    }
    pq.write_table(pa.table(profiles), root / "profiles" / f"page-{lo:08d}.parquet")
    k = contents_per_account
    if not k:
        return
    item = np.repeat(np.arange(m), k)
    cid = np.char.add(_s("content-", a[item]), _s("-", np.tile(np.arange(k), m)))
    seconds = rng.integers(0, 86_400, len(item))
    published = (np.datetime64("2024-05-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str)
    pq.write_table(
        pa.table(
            {
                "id": cid,
                "user.id": auid[item],
                "account.id": acc_id[item],
                "work_platform.name": platform[item],
                "title": np.char.add("A video about things #", cid),
                "format": ["VIDEO"] * len(item),
                "type": ["REELS"] * len(item),
                "url": np.char.add("https://example.com/", cid),
                "published_at": np.char.add(published, "Z"),
                "engagement.like_count": rng.integers(0, 10_000, len(item)),
                "engagement.comment_count": rng.integers(0, 500, len(item)),
                "engagement.view_count": rng.integers(0, 10**6, len(item)),
                "engagement.share_count": rng.integers(0, 100, len(item)),
            }
        ),
        root / "contents" / f"page-{lo:08d}.parquet",
    )


def write_fixture(root: Path, creators: int, contents_per_account: int) -> None:
    for resource_name in ("users", "accounts", "profiles", "contents"):
        (root / resource_name).mkdir(parents=True, exist_ok=True)
    for lo in range(0, creators, PAGE):
        _write_page(root, lo, min(creators, lo + PAGE), contents_per_account)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--contents-per-account", type=int, default=2)
    parser.add_argument("--keep", help="write the fixture here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    from creator_sync.pipeline import transform

    with tempfile.TemporaryDirectory(prefix="bench-transform-creators-") as tmp:
        root = Path(args.keep or tmp)
        child = multiprocessing.get_context("fork").Process(
            target=write_fixture, args=(root, args.creators, args.contents_per_account)
        )
        began = time.perf_counter()
        child.start()
        child.join()
        if child.exitcode:
            raise RuntimeError(f"fixture writer failed ({child.exitcode})")
        written = time.perf_counter() - began
        rss_before = peak_rss_mb()
        began = time.perf_counter()
        result = transform.transform_run(root, start=START, end=END, out_dir=root / "out")
        elapsed = time.perf_counter() - began
        stats = result.stats
        out = {
            "creators": args.creators,
            "contents_per_account": args.contents_per_account,
            "source_rows": {k: v for k, v in stats.rows_read.items()},
            "fixture_s": round(written, 1),
            "seconds": round(elapsed, 1),
            "creators_per_s": round(args.creators / elapsed),
            "peak_rss_mb_before_transform": round(rss_before),
            "peak_rss_mb": round(peak_rss_mb()),
            "buckets": stats.buckets,
            "chunk_rows": transform.CHUNK_ROWS,
            "creator_rows_per_bucket": getattr(transform, "CREATOR_ROWS", None),
            "event_rows_per_bucket": transform.ROWS_PER_BUCKET,
            "users_written": stats.users_written,
            "events_written": stats.events_written,
            "rejected": sum(stats.rejected.values()),
            "output_mb": round(result.users_path.stat().st_size / 2**20, 1),
        }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
