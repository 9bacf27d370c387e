"""devtools.bench.snapshot_merge: the hourly run's merge it measures really merges (the re-read rows win), and
its keys are named by size."""

from __future__ import annotations

from devtools.bench import local, snapshot_merge


def test_the_bench_merges_an_hourly_re_read_onto_the_stored_fleet(tmp_path, monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_DATA_URL", raising=False)
    out = snapshot_merge.main(["--creators", "2400", "--webhook-accounts", "20", "--keep", str(tmp_path)])
    assert out["kind"] == "incremental"
    assert out["sizes"] == {"users": 2400, "profiles": 3600, "accounts": 3600}
    assert out["re_read_rows"]["users"] == 2400 // snapshot_merge.SLICE
    assert out["disconnected_in_fetch_files"] == 20  # the webhook accounts' re-read rows won
    assert out["peak_rss_mb"] >= out["peak_rss_mb_before_merge"] > 0


def test_the_memory_keys_are_named_by_size():
    small = {"creators": 100_000, "peak_rss_mb": 400, "peak_rss_mb_before_merge": 200}
    big = {"creators": 1_000_000, "peak_rss_mb": 500, "peak_rss_mb_before_merge": 201}
    assert local.snapshot_merge_memory(small, big) == {
        "snapshot_merge_peak_rss_mb_100k": 400,
        "snapshot_merge_peak_rss_mb_1m": 500,
        "snapshot_merge_rss_growth_10x": 1.25,
        "snapshot_merge_rss_before_mb": 201,
    }
    full = local.snapshot_merge_memory(small, big, prefix="snapshot_merge_full_read")
    assert full["snapshot_merge_full_read_peak_rss_mb_1m"] == 500
    assert full["snapshot_merge_full_read_rss_growth_10x"] == 1.25


def test_the_full_read_variant_stores_the_fetched_fleet_as_the_first_version(tmp_path, monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_DATA_URL", raising=False)
    monkeypatch.delenv("CREATOR_SYNC_FETCH_MODE", raising=False)
    out = snapshot_merge.main(["--creators", "1200", "--full-read", "--keep", str(tmp_path)])
    assert out["kind"] == "full"
    assert out["sizes"] == {"users": 1200, "profiles": 1800, "accounts": 1800}
