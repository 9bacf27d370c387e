"""`connected_platforms` and the totals over platforms follow the creator's CONNECTED accounts: the totals
count only connected accounts' profiles, and when no account is connected any more the three are removed at
Insider (Delete User Attribute), or, with `clear_as: empty_list`, `connected_platforms` is sent as []."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.mapping_schema import MappingError
from creator_sync.pipeline.transform import transform_run

from .factories import END, START
from .test_attributes import two_platform_fetch, with_changes

WHOLE = ("connected_platforms", "primary_platform", "total_follower_count")


def run(tmp_path: Path, instagram: str | None, youtube: str, mapping=None) -> tuple[dict, list[str]]:
    """Creator u1: Instagram a1 (1,500 followers) and YouTube a2 (9,000) in the given statuses."""
    inputs = two_platform_fetch(tmp_path / "in", with_audience=False, youtube=youtube)
    path = inputs["accounts"][0]
    frame = pd.read_parquet(path)
    frame.loc[frame["id"] == "a1", "status"] = instagram  # None: an account without a status
    frame.to_parquet(path, index=False)
    result = transform_run(inputs, start=START, end=END, out_dir=tmp_path / "out", mapping=mapping)
    user = json.loads(result.users_path.read_text().splitlines()[0])
    lines = result.clears_path.read_text().splitlines()
    clears = json.loads(lines[0])["custom"]["whole"] if lines else []
    return user, clears


def test_totals_count_only_the_connected_accounts(tmp_path):
    user, clears = run(tmp_path, "CONNECTED", "SESSION_EXPIRED")
    custom = user["attributes"]["custom"]
    assert custom["total_follower_count"] == 1500  # YouTube's 9,000 are not counted
    assert custom["primary_platform"] == "instagram"  # though YouTube has more followers
    assert custom["connected_platforms"] == ["instagram"]
    assert not set(WHOLE) & set(clears)  # a platform is still connected: nothing over all of them cleared


def test_without_connected_only_a_disconnected_account_counts(tmp_path):
    """The guard switched off (connected_only: false): the totals include the lapsed YouTube account."""

    def off(raw):
        for name in ("total_follower_count", "primary_platform"):
            raw["attributes"]["custom"][name]["connected_only"] = False

    user, _ = run(tmp_path, "CONNECTED", "SESSION_EXPIRED", load_mapping(with_changes(tmp_path, off)))
    assert user["attributes"]["custom"]["total_follower_count"] == 10500
    assert user["attributes"]["custom"]["primary_platform"] == "youtube"


def test_no_connected_account_removes_the_list_and_the_totals(tmp_path):
    user, clears = run(tmp_path, "NOT_CONNECTED", "SESSION_EXPIRED")
    custom = user["attributes"]["custom"]
    assert not set(WHOLE) & set(custom)
    assert set(WHOLE) <= set(clears)
    assert "instagram_follower_count" in clears and "youtube_follower_count" in clears


def test_without_the_clear_the_stale_list_would_stay(tmp_path):
    """The clear switched off (clear: false on the three): nothing removes them; Insider keeps the list."""

    def off(raw):
        for name in WHOLE:
            raw["attributes"]["custom"][name]["clear"] = False
            raw["attributes"]["custom"][name].pop("clear_as", None)

    user, clears = run(
        tmp_path, "NOT_CONNECTED", "SESSION_EXPIRED", load_mapping(with_changes(tmp_path, off))
    )
    assert not set(WHOLE) & set(clears)
    assert "connected_platforms" not in user["attributes"]["custom"]


def test_clear_as_empty_list_sends_an_empty_array_with_not_append(tmp_path):
    def empty(raw):
        raw["attributes"]["custom"]["connected_platforms"]["clear_as"] = "empty_list"

    mapping = load_mapping(with_changes(tmp_path, empty))
    user, clears = run(tmp_path, "NOT_CONNECTED", "NOT_CONNECTED", mapping)
    assert user["attributes"]["custom"]["connected_platforms"] == []
    assert user["not_append"] is True and user["append"] is False  # the list replaces, not appends
    assert "connected_platforms" not in clears
    assert {"primary_platform", "total_follower_count"} <= set(clears)  # those are deleted either way
    connected, _ = run(tmp_path / "c", "CONNECTED", "NOT_CONNECTED", mapping)
    assert connected["attributes"]["custom"]["connected_platforms"] == ["instagram"]


def test_an_account_without_a_status_clears_nothing(tmp_path):
    _, clears = run(tmp_path, None, "NOT_CONNECTED")  # Instagram without a status: unknown
    assert not set(WHOLE) & set(clears)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("total_follower_count", {"clear_as": "empty_list"}, "not an array"),
        ("connected_platforms", {"clear": False, "clear_as": "empty_list"}, "add clear: true"),
    ],
)
def test_clear_as_is_checked(tmp_path, name, change, message):
    def bad(raw):
        raw["attributes"]["custom"][name].update(change)

    with pytest.raises(MappingError, match=message):
        load_mapping(with_changes(tmp_path, bad))
