"""The income state at scale: what the transform's income step costs a run over every creator.

    python -m devtools.bench.income_state --backend sqlite|postgresql [--creators 1000000] [--bucket 50000]

Fills a fresh store (devtools.bench.state_store's: SQLite in a temp dir or a throw-away PostgreSQL
database) through `StateStore.income_totals`, one call per transform bucket of `--bucket` creators, with 20
transactions (two currencies, over 90 days) and 3 payouts for every 20th creator; then times an hourly run
an hour later (every creator written, a new transaction for every 500th, the figures whose oldest recent
transaction left the window recomputed) and the same hour again with nothing new (a re-run: read only).
Prints one JSON line of seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import time

DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
END = 20_000 * DAY_US


def run(backend: str, creators: int, bucket: int) -> dict[str, float]:
    from creator_sync.pipeline.income import window_us
    from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem
    from devtools.bench.state_store import _store

    users = [f"user-{i:08d}" for i in range(creators)]
    rng = random.Random(1)
    out: dict[str, float] = {}
    with _store(backend) as store:

        def call(items, part, as_of):
            store.income_totals(items, part, as_of_us=as_of, window_us=window_us())

        began = time.perf_counter()
        for lo in range(0, creators, bucket):
            part = users[lo : lo + bucket]
            items = [
                IncomeItem(u, TRANSACTION, f"t-{u}-{k}", "a", rng.randrange(10**8),
                           rng.choice(["USD", "EUR"]), END - rng.randrange(90 * DAY_US), "COMPLETED", True)
                for u in part[::20] for k in range(20)
            ] + [
                IncomeItem(u, PAYOUT, f"p-{u}-{k}", "a", rng.randrange(10**8), "USD",
                           END - rng.randrange(90 * DAY_US), "PAID", True)
                for u in part[::20] for k in range(3)
            ]  # fmt: skip
            call(items, part, END)
        out["fill_s"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        for lo in range(0, creators, bucket):
            part = users[lo : lo + bucket]
            at = END + HOUR_US - 5
            new = [
                IncomeItem(u, TRANSACTION, f"n-{u}", "a", 10**6, "USD", at, "COMPLETED", True)
                for u in part[::500]
            ]
            call(new, part, END + HOUR_US)
        out["hourly_run_s"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        for lo in range(0, creators, bucket):
            call([], users[lo : lo + bucket], END + HOUR_US)
        out["rerun_nothing_new_s"] = round(time.perf_counter() - began, 2)
    return {"backend": backend, "creators": creators, "bucket": bucket, **out}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--bucket", type=int, default=50_000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.backend, args.creators, args.bucket)))


if __name__ == "__main__":
    main()
