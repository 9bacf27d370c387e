"""docs/mapping.md is generated from the mapping; its example user comes from a transform run."""

from __future__ import annotations

import json
from pathlib import Path

from creator_sync.pipeline import mapping_doc
from creator_sync.pipeline.mapping import load_mapping

DOC = Path(__file__).resolve().parents[2] / "docs" / "mapping.md"


def test_the_mapping_doc_is_generated_from_the_mapping():
    assert DOC.read_text() == mapping_doc.markdown(), (
        "docs/mapping.md is stale: python -m creator_sync.pipeline.mapping_doc > docs/mapping.md"
    )


def test_the_doc_names_every_attribute_and_event_of_the_mapping():
    text = DOC.read_text()
    m = load_mapping()
    for name in m.attributes:
        short = name.removeprefix("custom.")
        assert f"`{short}`" in text or f"`{{platform}}_{short}`" in text, name
    assert all(f"`{event}`" in text for event in m.events)


def test_the_example_user_is_a_two_platform_creator_with_the_new_attributes():
    user = mapping_doc.example_user(load_mapping())
    custom = user["attributes"]["custom"]
    assert {"instagram_follower_count", "youtube_follower_count"} <= set(custom)
    assert sorted(custom["connected_platforms"]) == ["instagram", "youtube"]
    assert custom["tiktok_connection_status"] == "session_expired"
    assert not [k for k in custom if k.startswith("tiktok_") and k != "tiktok_connection_status"]
    assert custom["instagram_posts_per_week"] > 0 and custom["total_follower_count"] == 232_000
    block = DOC.read_text().split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(block) == user


def test_the_example_clear_lists_the_lapsed_platforms_attributes_only():
    m = load_mapping()
    clear = mapping_doc.example_clear(m)
    assert clear["identifiers"] == {"uuid": "u-maya"}
    names = clear["custom"]["whole"]
    assert "tiktok_follower_count" in names and "tiktok_engagement_rate" in names
    assert "tiktok_connection_status" not in names  # clear: false in the mapping
    assert all(n.startswith("tiktok_") for n in names)


def test_the_audience_example_is_per_platform_and_off_by_default():
    audience = mapping_doc.audience_example(load_mapping())
    assert audience["instagram_audience_top_countries"] == ["GB", "US", "IN"]
    assert audience["youtube_audience_top_countries_shares"] == [36.0, 25.0, 10.0]
    assert not any(
        "_audience_" in k for k in mapping_doc.example_user(load_mapping())["attributes"]["custom"]
    )
