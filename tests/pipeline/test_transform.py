from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta

import pytest

from creator_sync.pipeline.mapping import load_mapping
from creator_sync.pipeline.transform import transform_run
from creator_sync.pipeline.validate import RFC3339_RE

from .factories import END, START, content, profile, write_resource


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def by_uuid(path) -> dict[str, dict]:
    return {u["identifiers"]["uuid"]: u for u in read_jsonl(path)}


def rejected_by_uuid(path) -> dict[str, dict]:
    return {r["user_key"]: r for r in read_jsonl(path)}


def run(inputs, tmp_path, name="out", **kwargs):
    return transform_run(inputs, start=START, end=END, out_dir=tmp_path / name, **kwargs)


def test_multi_account_creator_is_one_user_with_merged_profiles(fetched, tmp_path):
    result = run(fetched(), tmp_path)
    users = by_uuid(result.users_path)
    assert list(users) == ["u1"]
    ada = users["u1"]
    # personal fields from the most recently updated profile (a2, 2024-04-20); full_name split
    assert ada["identifiers"] == {
        "uuid": "u1",
        "email": "ada@example.com",
        "phone_number": "+442079460018",
        "custom": {"insightiq_external_id": "ext-1"},
    }
    attrs = ada["attributes"]
    assert (attrs["name"], attrs["surname"], attrs["country"], attrs["language"]) == (
        "Ada",
        "Lovelace King",
        "GB",
        "en",
    )
    # counts per platform, from each account's profile
    assert attrs["custom"]["instagram_follower_count"] == 100
    assert attrs["custom"]["youtube_follower_count"] == 2000
    assert attrs["custom"]["youtube_subscriber_count"] == 2000
    # no consent is ever invented
    assert not {"gdpr_optin", "email_optin", "sms_optin", "whatsapp_optin"} & set(attrs)


def test_phone_national_format_becomes_e164_and_12345_is_rejected(fetched, tmp_path):
    result = run(fetched(), tmp_path)
    assert by_uuid(result.users_path)["u1"]["identifiers"]["phone_number"] == "+442079460018"
    rejected = rejected_by_uuid(result.rejected_path)["u2"]
    assert rejected["reason"] == "non_e164_phone"
    assert "12345" in rejected["detail"]
    assert rejected["payload"]["identifiers"]["uuid"] == "u2"  # the payload is kept for the dead letter


def test_malformed_email_is_rejected_not_sent_without_it(fetched, tmp_path):
    result = run(fetched(), tmp_path)
    rejected = rejected_by_uuid(result.rejected_path)["u3"]
    assert rejected["reason"] == "malformed_email"
    assert rejected["payload"]["identifiers"]["email"] == "not-an-email"
    assert "u3" not in by_uuid(result.users_path)


def test_no_contact_identifier_rule_is_configurable(fetched, tmp_path):
    inputs = fetched()
    result = run(inputs, tmp_path)
    assert rejected_by_uuid(result.rejected_path)["u4"]["reason"] == "no_usable_identifier"
    assert result.stats.rejected == {"no_usable_identifier": 1, "malformed_email": 1, "non_e164_phone": 1}

    relaxed = dataclasses.replace(load_mapping(), require_contact_identifier=False)
    result = run(inputs, tmp_path, "relaxed", mapping=relaxed)
    assert by_uuid(result.users_path)["u4"]["identifiers"] == {
        "uuid": "u4",
        "custom": {"insightiq_external_id": "ext-4"},
    }


def test_platform_attribute_names_are_normalised(fetched, tmp_path):
    profiles = [
        profile(
            "u1", "a1", "Amazon Live", "2024-04-01T00:00:00Z", first_name="A",
            emails=[{"type": "WORK", "email_id": "a@example.com"}],
        ),
        profile("u1", "a2", " X (Twitter) ", "2024-04-02T00:00:00Z"),
    ]  # fmt: skip
    result = run(fetched(profiles=profiles, users=[{"id": "u1"}], contents=[]), tmp_path)
    custom = by_uuid(result.users_path)["u1"]["attributes"]["custom"]
    assert custom["amazon_live_follower_count"] == 100
    assert custom["x_twitter_follower_count"] == 100
    assert all(re.fullmatch(r"[a-z0-9_]+", key) for key in custom)


def test_events_only_inside_the_interval_with_rfc3339_utc_timestamps(fetched, tmp_path):
    result = run(fetched(), tmp_path)
    events = by_uuid(result.users_path)["u1"]["events"]
    assert [(e["event_name"], e["timestamp"]) for e in events] == [
        ("income_received", "2024-05-01T06:00:00Z"),  # 08:00+02:00
        ("content_published", "2024-05-01T10:00:00Z"),
        ("content_published", "2024-05-01T23:59:59Z"),
    ]  # c3 (before start) and c4 (== end, exclusive) are out
    assert all(re.match(RFC3339_RE, e["timestamp"]) for e in events)
    income, first = events[0], events[1]
    assert income["event_params"] == {
        "currency": "USD",
        "custom": {
            "amount": 12.5,
            "type": "AD_REVENUE",
            "transaction_id": "t1",
            "platform": "youtube",
            "account_id": "a-u1",
        },
    }
    assert first["event_params"]["name"] == "title c1"
    assert first["event_params"]["url"] == "https://example.com/c1"
    assert first["event_params"]["custom"]["content_id"] == "c1"
    assert first["event_params"]["custom"]["like_count"] == 10
    assert result.stats.orphan_events == 1  # c6 belongs to a user the fetch did not return
    assert result.stats.rows_outside_interval == 3  # c3, c4, t2


def test_lookback_widens_the_event_window_but_not_the_engagement_attributes(fetched, tmp_path):
    exact = run(fetched(), tmp_path, "exact")
    wide = run(fetched(), tmp_path, "wide", chunk_rows=2, events_from=START - timedelta(days=20))
    events = by_uuid(wide.users_path)["u1"]["events"]
    assert [(e["event_name"], e["timestamp"]) for e in events] == [
        ("income_received", "2024-04-15T08:00:00Z"),  # t2: in [events_from, start)
        ("content_published", "2024-04-30T23:59:59Z"),  # c3: in [events_from, start)
        ("income_received", "2024-05-01T06:00:00Z"),
        ("content_published", "2024-05-01T10:00:00Z"),
        ("content_published", "2024-05-01T23:59:59Z"),
    ]  # c4 (== end) is still out
    assert (wide.stats.rows_in_lookback, wide.stats.rows_outside_interval) == (2, 1)
    assert (exact.stats.rows_in_lookback, exact.stats.events_written + 2) == (0, wide.stats.events_written)
    # attributes (content engagement of the interval itself) do not depend on the look-back
    for result in (exact, wide):
        assert by_uuid(result.users_path)["u1"]["attributes"] == by_uuid(exact.users_path)["u1"]["attributes"]
    assert by_uuid(exact.users_path)["u1"]["attributes"]["custom"]["instagram_engagement_count"] == 13
    with pytest.raises(ValueError, match="events_from"):
        run(fetched(), tmp_path, "bad", events_from=END)


def test_chunked_processing_gives_the_same_output_as_one_chunk(fetched, tmp_path):
    inputs = fetched()
    one = run(inputs, tmp_path, "one", chunk_rows=1_000_000)
    many = run(inputs, tmp_path, "many", chunk_rows=1)
    assert many.stats.chunks > one.stats.chunks
    assert one.users_path.read_bytes() == many.users_path.read_bytes()
    assert one.rejected_path.read_bytes() == many.rejected_path.read_bytes()
    spread = run(inputs, tmp_path, "spread", chunk_rows=2, buckets=7)
    assert spread.users_path.read_bytes() == one.users_path.read_bytes()


def test_varying_columns_duplicates_and_text_escaping(fetched, tmp_path):
    inputs = fetched()
    root = tmp_path / "fetch" / "contents"
    # a later page without engagement columns, repeating c1 and adding a title that needs escaping
    inputs["contents"].append(
        write_resource(
            root / "part-1.parquet",
            [
                {"id": "c1", "user": {"id": "u1"}, "published_at": "2024-05-01T10:00:00Z", "title": "again"},
                {"id": "c7", "user": {"id": "u1"}, "published_at": "2024-05-01T11:00:00",
                 "title": 'say "hi"\n\\ ünï'},
            ],
        )
    )  # fmt: skip
    result = run(inputs, tmp_path)
    events = {
        e["event_params"]["custom"].get("content_id"): e for e in by_uuid(result.users_path)["u1"]["events"]
    }
    assert events["c1"]["event_params"]["name"] == "again"  # the later fetch wins, sent once
    assert events["c7"]["event_params"]["name"] == 'say "hi"\n\\ ünï'
    assert events["c7"]["timestamp"] == "2024-05-01T11:00:00Z"  # naive -> UTC
    assert "like_count" not in events["c7"]["event_params"]["custom"]  # missing column -> no key
    assert result.stats.duplicate_events == 1


def test_hash_record_and_stats_files(fetched, tmp_path):
    import pandas as pd

    result = run(fetched(), tmp_path)
    hashes = pd.read_parquet(result.hashes_path)
    assert list(hashes["uuid"]) == ["u1"] and hashes["events"].tolist() == [3]
    stats = json.loads(result.stats_path.read_text())
    assert stats["fetched_creators"] == 4 and stats["users_written"] == 1


def test_content_for_unknown_creator_and_empty_inputs(tmp_path):
    result = transform_run({}, start=START, end=END, out_dir=tmp_path / "empty")
    assert result.stats.fetched_creators == 0
    assert result.users_path.read_text() == ""


def test_user_too_large_is_rejected(fetched, tmp_path):
    big = [content(f"c{i}", "u1", "2024-05-01T10:00:00Z", title="x" * 500) for i in range(20)]
    small = dataclasses.replace(load_mapping(), max_user_bytes=5_000)
    result = run(fetched(contents=big), tmp_path, mapping=small)
    assert rejected_by_uuid(result.rejected_path)["u1"]["reason"] == "user_too_large"


def test_free_text_and_ids_are_escaped_in_the_written_json(fetched, tmp_path):
    nasty = ['say "hi"', "back\\slash", "ctl\x00\x01\x1f\t\n\r\b\f", "ünïcødé ✓ 𝄞 \u2028", "del\x7f"]
    contents = [
        content(
            f'c"{i}\\',
            "u1",
            f"2024-05-01T1{i}:00:00Z",
            platform=" X (Twitter) ",
            title=text,
            url=f"https://example.com/?q={text}",
            format=text,
            account={"id": f"a\t{i}"},
        )
        for i, text in enumerate(nasty)
    ] + [content("plain", "u1", "2024-05-01T20:00:00Z", title=None)]
    result = run(fetched(contents=contents), tmp_path)
    lines = [line for line in result.users_path.read_text().split("\n") if line]
    users = [json.loads(line) for line in lines]  # every line is valid JSON
    events = next(u for u in users if u["identifiers"]["uuid"] == "u1")["events"]
    published = [e for e in events if e["event_name"] == "content_published"]
    assert [e["event_params"].get("name") for e in published] == [*nasty, None]
    for i, (event, text) in enumerate(zip(published, nasty, strict=False)):
        assert event["event_params"]["url"] == f"https://example.com/?q={text}"
        custom = event["event_params"]["custom"]
        assert custom["content_id"] == f'c"{i}\\'
        assert custom["account_id"] == f"a\t{i}"
        assert custom["format"] == text
        assert custom["platform"] == "x_twitter"
    # written the way json.dumps writes it (no ASCII escaping of non-ASCII text)
    assert json.dumps(nasty[3], ensure_ascii=False) in lines[0]
