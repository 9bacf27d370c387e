"""The attribute engine: the mapping's attributes computed from the fetched columns, typed the way Insider
types them; arrays replace (not append); opt-in attributes off until the mapping names a source."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import yaml

from creator_sync.pipeline import engagement
from creator_sync.pipeline.creators import source_columns
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run
from creator_sync.settings import mapping_file

from .factories import END, START, content, profile, write_resource


def audience(user: str, account: str, platform: str, countries: list, cities: list, buckets: list) -> dict:
    return {
        "id": f"aud-{account}",
        "user": {"id": user},
        "account": {"id": account},
        "work_platform": {"name": platform},
        "countries": [{"code": c, "value": v} for c, v in countries],
        "cities": [{"name": c, "value": v} for c, v in cities],
        "gender_age_distribution": [{"gender": g, "age_range": r, "value": v} for g, r, v in buckets],
        "updated_at": "2024-04-30T00:00:00Z",
    }


def two_platform_fetch(
    root: Path, with_audience: bool = True, youtube: str = "SESSION_EXPIRED"
) -> dict[str, list[Path]]:
    """One creator on Instagram (connected, verified) and YouTube (session expired, more followers)."""
    email = [{"type": "WORK", "email_id": "ada@example.com"}]
    profiles = [
        profile(
            "u1", "a1", "Instagram", "2024-04-01T00:00:00Z", first_name="Ada", emails=email,
            username="ada.insta", url="https://www.instagram.com/ada.insta", image_url="https://img/old.jpg",
            is_verified=True, is_business=False, date_of_birth="1990-05-03", introduction="bio text",
            addresses=[{"type": "HOME", "city": "Istanbul", "country": "TR"}],
            reputation={"follower_count": 1500, "following_count": 10, "content_count": 5},
        ),
        profile(
            "u1", "a2", "YouTube", "2024-04-20T00:00:00Z", emails=email, username="AdaTube",
            url="https://www.youtube.com/AdaTube", image_url="https://img/new.jpg", is_verified=False,
            is_business=True, date_of_birth=None, addresses=[],
            reputation={"follower_count": 9000, "following_count": 1, "content_count": 40},
        ),
    ]  # fmt: skip
    accounts = [
        {"id": "a1", "user": {"id": "u1"}, "work_platform": {"name": "Instagram"}, "status": "CONNECTED"},
        {"id": "a2", "user": {"id": "u1"}, "work_platform": {"name": "YouTube"}, "status": youtube},
    ]
    out = {
        "users": [write_resource(root / "users.parquet", [{"id": "u1", "external_id": "e1"}])],
        "profiles": [write_resource(root / "profiles.parquet", profiles)],
        "accounts": [write_resource(root / "accounts.parquet", accounts)],
    }
    if with_audience:
        rows = [
            audience("u1", "a1", "Instagram", [("US", 40), ("GB", 30), ("TR", 10)], [("London", 9)],
                     [("FEMALE", "25-34", 30), ("MALE", "18-24", 20)]),
            audience("u1", "a2", "YouTube", [("GB", 50), ("US", 20), ("IN", 30)], [("Paris", 5)],
                     [("FEMALE", "25-34", 10), ("MALE", "35-44", 40)]),
        ]  # fmt: skip
        out["audience"] = [write_resource(root / "audience.parquet", rows)]
    return out


def run(inputs, out: Path, mapping=None) -> tuple[dict, str]:
    result = transform_run(inputs, start=START, end=END, out_dir=out, mapping=mapping)
    line = result.users_path.read_text().splitlines()[0]
    return json.loads(line), line


def test_a_two_platform_creator_carries_the_creator_360_attributes(tmp_path):
    user, _ = run(two_platform_fetch(tmp_path / "in"), tmp_path / "out")
    attrs = user["attributes"]
    custom = attrs["custom"]
    assert attrs["age"] == 33  # born 1990-05-03; the run's interval ends 2024-05-02: a day short of 34
    assert attrs["city"] == "Istanbul"  # the only address (the newest profile has none)
    assert "birthday" not in attrs  # opt-in, off by default
    assert custom["total_follower_count"] == 1500  # connected accounts only: YouTube's session expired
    assert custom["primary_platform"] == "instagram"
    assert custom["connected_platforms"] == ["instagram"]  # YouTube's session expired
    assert (custom["instagram_connection_status"], custom["youtube_connection_status"]) == (
        "connected",
        "session_expired",
    )
    assert custom["instagram_handle"] == "ada.insta"
    assert custom["instagram_profile_url"] == "https://www.instagram.com/ada.insta"
    assert (custom["instagram_is_verified"], custom["instagram_is_business"]) == (True, False)
    # YouTube's session expired: its per-platform attributes are cleared, not sent (pipeline.clearing)
    assert not [k for k in custom if k.startswith("youtube_") and k != "youtube_connection_status"]
    (clear,) = [json.loads(x) for x in (tmp_path / "out" / "clears.jsonl").read_text().splitlines()]
    assert clear["identifiers"] == {"uuid": "u1"}
    names = set(clear["custom"]["whole"])
    assert {"youtube_handle", "youtube_is_business", "youtube_follower_count"} <= names
    assert not [n for n in clear["custom"]["whole"] if not n.startswith("youtube_")]
    assert custom["image_url"] == "https://img/new.jpg"  # the newest profile's
    assert "bio" not in custom  # opt-in
    assert not any("audience" in key for key in custom)  # opt-in: audience is read by targeted runs only
    assert user["append"] is False and user["not_append"] is True  # arrays replace what Insider holds
    assert custom["instagram_follower_count"] == 1500  # the existing attributes are still there


def test_without_arrays_no_append_flags_and_without_audience_no_audience_attributes(tmp_path):
    inputs = two_platform_fetch(tmp_path / "in", with_audience=False)
    inputs["accounts"] = []
    user, line = run(inputs, tmp_path / "out")
    assert not any(key.startswith("audience_") for key in user["attributes"]["custom"])
    assert "connected_platforms" not in user["attributes"]["custom"]
    assert "append" not in user and "not_append" not in line


def with_changes(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(mapping_file().read_text())
    change(raw)
    path = tmp_path / "insider_mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_an_opt_in_attribute_is_sent_once_the_mapping_names_its_source(tmp_path):
    def opt_in(raw):
        raw["attributes"]["birthday"]["source"] = "profiles.date_of_birth"
        raw["attributes"]["custom"]["bio"]["source"] = "profiles.introduction"

    mapping = load_mapping(with_changes(tmp_path, opt_in))
    assert "introduction" in source_columns(mapping)["profiles"]
    assert "introduction" not in source_columns(load_mapping())["profiles"]  # off: not even read
    user, _ = run(two_platform_fetch(tmp_path / "in"), tmp_path / "out", mapping)
    assert user["attributes"]["birthday"] == "1990-05-03T00:00:00Z"  # Insider's Date/Time form
    assert user["attributes"]["custom"]["bio"] == "bio text"


def test_audience_per_platform_once_the_mapping_names_its_sources(tmp_path):
    def opt_in(raw):
        custom = raw["attributes"]["custom"]
        for name, source in [
            ("countries", "countries"),
            ("cities", "cities"),
            ("gender_age", "gender_age_distribution"),
        ]:
            custom[f"audience_top_{name}"]["source"] = f"audience.{source}"
            custom[f"audience_top_{name}_shares"]["source"] = f"audience.{source}"

    assert "audience" not in source_columns(load_mapping())  # off: the audience files are not even read
    mapping = load_mapping(with_changes(tmp_path, opt_in))
    user, _ = run(two_platform_fetch(tmp_path / "in", youtube="CONNECTED"), tmp_path / "out", mapping)
    custom = user["attributes"]["custom"]
    assert custom["instagram_audience_top_countries"] == ["US", "GB", "TR"]
    assert custom["instagram_audience_top_countries_shares"] == [40.0, 30.0, 10.0]
    assert custom["youtube_audience_top_countries"] == ["GB", "IN", "US"]
    assert custom["youtube_audience_top_cities"] == ["Paris"]
    assert custom["youtube_audience_top_gender_age"] == ["male_35-44", "female_25-34"]
    assert custom["youtube_audience_top_gender_age_shares"] == [40.0, 10.0]


def test_a_new_attribute_from_a_fetched_column_needs_only_the_mapping(tmp_path):
    def add(raw):
        raw["attributes"]["custom"]["youngest_handle"] = {
            "source": "profiles.username",
            "transform": "lowercase",
        }
        raw["attributes"]["custom"]["platform_count"] = {
            "source": "accounts.id",
            "reduce": "platforms",
            "type": "array",
        }
        raw["attributes"]["custom"]["top_country"] = {  # over all the creator's accounts
            "source": "audience.countries",
            "reduce": "top_items",
            "key": "code",
            "top": 1,
            "type": "array",
        }

    mapping = load_mapping(with_changes(tmp_path, add))
    user, _ = run(two_platform_fetch(tmp_path / "in"), tmp_path / "out", mapping)
    assert user["attributes"]["custom"]["youngest_handle"] == "adatube"  # the newest profile's
    assert user["attributes"]["custom"]["platform_count"] == ["instagram", "youtube"]
    assert user["attributes"]["custom"]["top_country"] == ["GB"]  # (30 + 50) / 2 beats US (40 + 20) / 2


def with_contents(tmp_path: Path) -> dict[str, list[Path]]:
    inputs = two_platform_fetch(tmp_path / "in", with_audience=False)
    items = [  # Instagram: three posts in the 30 days before END, one older (outside the window)
        content("c1", "u1", "2024-05-01T10:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 100, "comment_count": 10, "view_count": 1000, "share_count": 5}),
        content("c2", "u1", "2024-04-20T10:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 50, "comment_count": 20, "view_count": None, "share_count": 0}),
        content("c3", "u1", "2024-04-03T00:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 0, "comment_count": 0, "view_count": 2000, "share_count": 0}),
        content("c4", "u1", "2024-03-01T00:00:00Z", platform="Instagram", account={"id": "a1"},
                engagement={"like_count": 9999, "comment_count": 0, "view_count": 0, "share_count": 0}),
    ]  # fmt: skip
    inputs["contents"] = [write_resource(tmp_path / "in" / "contents.parquet", items)]
    return inputs


def test_engagement_over_the_window_when_the_run_covers_it(tmp_path):
    inputs = with_contents(tmp_path)
    result = transform_run(
        inputs, start=START, end=END, events_from=START - timedelta(days=60), out_dir=tmp_path / "out"
    )
    custom = json.loads(result.users_path.read_text().splitlines()[0])["attributes"]["custom"]
    assert custom["instagram_avg_likes_per_post"] == 50.0  # (100 + 50 + 0) / 3; c4 is older than 30 days
    assert custom["instagram_avg_comments_per_post"] == 10.0
    assert custom["instagram_avg_views_per_post"] == 1000.0  # a missing count counts 0
    assert custom["instagram_posts_per_week"] == round(3 / (30 / 7), 2)
    assert custom["instagram_engagement_rate"] == round(
        (185 / 3) / 1500 * 100, 4
    )  # (likes + comments + shares) / posts
    assert custom["instagram_last_post_at"] == "2024-05-01T10:00:00Z"
    assert not any(key.startswith("youtube_avg") for key in custom)  # no YouTube content


def test_a_run_that_read_less_than_the_window_sends_none_of_them(tmp_path):
    result = transform_run(with_contents(tmp_path), start=START, end=END, out_dir=tmp_path / "out")
    custom = json.loads(result.users_path.read_text().splitlines()[0])["attributes"]["custom"]
    assert not any(k.endswith(tuple(f"_{name}" for name in engagement.ATTRIBUTES)) for k in custom)
    assert custom["instagram_engagement_count"] == 115  # the interval's own metric is still there
    shorter = transform_run(
        with_contents(tmp_path), start=START, end=END, events_from=START - timedelta(days=7),
        out_dir=tmp_path / "week", engagement_days=7,
    )  # fmt: skip
    custom = json.loads(shorter.users_path.read_text().splitlines()[0])["attributes"]["custom"]
    assert custom["instagram_avg_likes_per_post"] == 100.0  # c1 alone is in the 7-day window


def test_blank_language_in_locale_form_is_no_locale(tmp_path):
    def locale(raw):
        raw["attributes"]["language"]["format"] = "locale"

    email = [{"type": "WORK", "email_id": "ada@example.com"}]
    profiles = [  # the newest profile has a country and a blank language, the older one a language
        profile("u1", "a1", "Instagram", "2024-04-01T00:00:00Z", emails=email, language="fr"),
        profile("u1", "a2", "YouTube", "2024-04-20T00:00:00Z", emails=email, language=" ", country="gb"),
    ]
    inputs = {"profiles": [write_resource(tmp_path / "profiles.parquet", profiles)]}
    mapping = load_mapping(with_changes(tmp_path, locale))
    user, _ = run(inputs, tmp_path / "out", mapping)
    assert user["attributes"]["language"] == "fr"  # the newest language there is; never "_GB"


def test_age_reads_both_date_of_birth_forms_and_guesses_no_other():
    """InsightIQ's own example writes a date of birth as MM/DD/YYYY ("11/26/1989"); ISO dates occur too.
    A form that is neither (DD/MM/YYYY, free text) gives no age rather than a wrong one."""
    from datetime import UTC, datetime

    import pandas as pd

    from creator_sync.pipeline.reducers import Context, age_years

    born = pd.Series(["11/26/1989", "1989-11-26", "26/11/1989", "soon", None])
    ctx = Context(frame=pd.DataFrame(index=born.index), as_of=datetime(2024, 11, 26, tzinfo=UTC))
    assert age_years(born, ctx).tolist()[:2] == [35.0, 35.0]
    assert age_years(born, ctx).isna().tolist() == [False, False, True, True, True]
