"""A webhook-triggered targeted run (CONTENTS.UPDATED: an account's item counts moved) refreshes the account's
rolling engagement attributes: it reads the account's contents over the whole engagement window, the
transform recomputes the attributes from them, and events stay those of the run's event window (an item
read again is not an event again)."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd

from creator_sync.pipeline.transform import ContentsRead, transform_run
from creator_sync.sync import targeted_fetch
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.steps import transform_step

from .factories import END, START, content, write_resource
from .test_attributes import two_platform_fetch

WINDOW_DAYS = 30  # the setting's default


def targeted(accounts=("a1",), lookback: int = 0) -> SyncRun:
    return SyncRun(
        "insightiq_webhook__refresh", START, END, False, False, tuple(accounts), lookback, "manual"
    )


def test_a_targeted_run_reads_contents_over_the_engagement_window_other_runs_over_their_events():
    assert targeted().contents_from == END - timedelta(days=WINDOW_DAYS)
    assert targeted().events_from == START  # events: the run's own window
    untargeted = SyncRun("scheduled__x", START, END, False, False, (), 0, "scheduled")
    assert untargeted.contents_from == untargeted.events_from == START
    longer = targeted(lookback=24 * 40)  # a look-back past the window: the longer of the two
    assert longer.contents_from == longer.events_from == START - timedelta(hours=24 * 40)


class ListingHook:
    """Answers contents lists with nothing and records each list's filters."""

    def __init__(self) -> None:
        self.lists: list[dict] = []
        self.stats: dict = {}

    def iter_records(self, resource, **params):
        self.lists.append({"resource": resource, **params})
        return iter(())


def test_the_targeted_contents_read_asks_for_the_engagement_window(local_sync_store):
    hook = ListingHook()
    targeted_fetch.fetch_contents(hook, targeted(("a1", "a2")))
    first_day = (END - timedelta(days=WINDOW_DAYS)).date().isoformat()
    last_day = (END - timedelta(microseconds=1)).date().isoformat()
    assert hook.lists == [
        {"resource": "contents", "from_date": first_day, "to_date": last_day, "account_id": a}
        for a in ("a1", "a2")
    ]


def _fetch_files(run: SyncRun) -> None:
    """The files a targeted run's fetch writes for creator u1: its directory and a1's contents over the
    window (c1 inside the run's interval, c2 and c3 earlier in the window, c4 before it)."""
    fetched = run.dir / "fetch"
    inputs = two_platform_fetch(fetched / "_src", with_audience=False)
    for part in ("users", "profiles", "accounts"):
        (fetched / part).mkdir(parents=True, exist_ok=True)
        inputs[part][0].rename(fetched / part / f"{part}.parquet")
    (fetched / "_src").rmdir()
    items = [
        content("c1", "u1", "2024-05-01T10:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 100, "comment_count": 10, "view_count": 1000, "share_count": 5}),
        content("c2", "u1", "2024-04-20T10:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 50, "comment_count": 20, "view_count": None, "share_count": 0}),
        content("c3", "u1", "2024-04-03T00:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 0, "comment_count": 0, "view_count": 2000, "share_count": 0}),
        content("c4", "u1", "2024-03-01T00:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 9999, "comment_count": 0, "view_count": 0, "share_count": 0}),
    ]  # fmt: skip
    (fetched / "contents").mkdir(parents=True, exist_ok=True)
    write_resource(fetched / "contents" / "contents.parquet", items)


def _sent(run: SyncRun) -> dict:
    result = transform_step(run)
    with open(result["users_path"]) as fh:
        return json.loads(fh.readline())


def test_the_targeted_run_sends_recomputed_engagement_and_only_its_window_s_events(local_sync_store):
    run = targeted()
    _fetch_files(run)
    user = _sent(run)
    custom = user["attributes"]["custom"]
    assert custom["instagram_avg_likes_per_post"] == 50.0  # c1..c3: (100 + 50 + 0) / 3; c4 is older
    assert custom["instagram_posts_per_week"] == round(3 / (WINDOW_DAYS / 7), 2)
    assert custom["instagram_engagement_rate"] == round((185 / 3) / 1500 * 100, 4)
    assert custom["instagram_last_post_at"] == "2024-05-01T10:00:00Z"
    published = [e for e in user["events"] if e["event_name"] == "content_published"]
    assert [e["event_params"]["custom"]["content_id"] for e in published] == ["c1"]  # not c2, c3 again


def test_without_the_engagement_window_read_the_targeted_run_sends_no_engagement(
    local_sync_store, monkeypatch
):
    """The fix switched off (the run's contents window = its event window): the same files give no
    engagement attributes, so a CONTENTS.UPDATED webhook would leave Insider's values as they were."""
    monkeypatch.setattr(SyncRun, "contents_from", property(lambda run: run.events_from))
    run = targeted()
    _fetch_files(run)
    custom = _sent(run)["attributes"]["custom"]
    assert "instagram_avg_likes_per_post" not in custom


def test_the_window_follows_the_setting(monkeypatch):
    monkeypatch.setenv("CREATOR_SYNC_ENGAGEMENT_WINDOW_DAYS", "7")
    assert targeted().contents_from == END - timedelta(days=7)


def _second_instagram(tmp_path, status: str) -> dict:
    """u1's fetch with a second Instagram account a3 (in `status`) beside a1, and a1's window contents."""
    inputs = two_platform_fetch(tmp_path / "in", with_audience=False)
    path = inputs["accounts"][0]
    frame = pd.read_parquet(path)
    extra = {"id": "a3", "user.id": "u1", "work_platform.name": "Instagram", "status": status}
    pd.concat([frame, pd.DataFrame([extra])], ignore_index=True).to_parquet(path, index=False)
    items = [
        content("c1", "u1", "2024-05-01T10:00:00Z", platform="Instagram", account={"id": "a1"}),
        content("c2", "u1", "2024-04-20T10:00:00Z", platform="Instagram", account={"id": "a1"}),
    ]
    inputs["contents"] = [write_resource(tmp_path / "in" / "contents.parquet", items)]
    return inputs


def _window_attributes(tmp_path, status: str, read) -> dict:
    result = transform_run(
        _second_instagram(tmp_path, status), start=START, end=END, out_dir=tmp_path / "out",
        contents=ContentsRead(END - timedelta(days=WINDOW_DAYS), None if read is None else frozenset(read)),
    )  # fmt: skip
    custom = json.loads(result.users_path.read_text().splitlines()[0])["attributes"]["custom"]
    return {k: v for k, v in custom.items() if k.startswith("instagram_") and k.endswith("_per_post")}


def test_engagement_over_part_of_a_platform_s_accounts_is_not_sent(tmp_path):
    """A webhook named a1; u1 also has a3 on Instagram, whose contents the run did not read: a value over
    a1 alone would replace the platform's at Insider, so none is sent."""
    assert _window_attributes(tmp_path / "part", "CONNECTED", ["a1"]) == {}
    both = _window_attributes(tmp_path / "both", "CONNECTED", ["a1", "a3"])
    assert both["instagram_avg_likes_per_post"] == 10.0
    lapsed = _window_attributes(tmp_path / "lapsed", "NOT_CONNECTED", ["a1"])  # a3 does not count
    assert lapsed["instagram_avg_likes_per_post"] == 10.0
    every = _window_attributes(tmp_path / "all", "CONNECTED", None)  # not a targeted run: all were read
    assert every["instagram_avg_likes_per_post"] == 10.0
