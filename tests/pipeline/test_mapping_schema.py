"""The mapping file's schema: a bad file fails at load with the file, the line of the bad key and the fix."""

from __future__ import annotations

import pytest

from creator_sync.pipeline.mapping import load_mapping, parse_mapping
from creator_sync.pipeline.mapping_schema import MappingError
from creator_sync.settings import mapping_file

GOOD = mapping_file().read_text()


def line_of(text: str, needle: str, below: int = 0) -> int:
    """1-based line of the first line containing `needle`, plus `below` (the line the error must name)."""
    return below + next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def error_of(tmp_path, text: str) -> str:
    path = tmp_path / "insider_mapping.yaml"
    path.write_text(text)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    return str(caught.value)


def bad(tmp_path, old: str, new: str, marker: str | tuple[str, int], message: str) -> None:
    assert old in GOOD, old
    text = GOOD.replace(old, new, 1)
    path = tmp_path / "insider_mapping.yaml"
    line = line_of(text, *((marker,) if isinstance(marker, str) else marker))
    assert error_of(tmp_path, text) == f"invalid mapping file\n{path}:{line}: {message}"


def test_the_packaged_mapping_is_valid():
    mapping = load_mapping(mapping_file())
    assert "name" in mapping.attributes and "custom.total_follower_count" in mapping.attributes
    assert mapping.attributes["birthday"].source is None  # opt-in: off
    assert "birthday" not in mapping.active()


def test_an_unknown_reducer_names_the_line_and_the_choices(tmp_path):
    bad(
        tmp_path,
        "      reduce: max_platform\n",
        "      reduce: max_platfrom\n",
        "max_platfrom",
        "attributes.custom.primary_platform.reduce must be one of newest, last_row, sum, sum_per_platform, "
        "newest_per_platform, max_platform, platforms, top_items, top_shares, top_items_per_platform, "
        "top_shares_per_platform; got 'max_platfrom'",
    )


def test_a_misspelt_key_is_refused_not_ignored(tmp_path):
    bad(
        tmp_path,
        "  gender: {source: profiles.gender,",
        "  gender: {sorce: profiles.gender,",
        "sorce",
        "attributes.gender.sorce: unknown key; remove it or check its spelling "
        "(docs/mapping.md lists the keys)",
    )


def test_a_custom_attribute_outside_custom_is_refused(tmp_path):
    bad(
        tmp_path,
        "  city: {source",
        "  town: {source",
        "town:",
        "attributes.town: 'town' is not one of Insider's default attributes "
        "(name, surname, birthday, gender, age, language, country, city); move it under attributes.custom",
    )


def test_consent_is_never_mapped(tmp_path):
    bad(
        tmp_path,
        "  city: {source",
        "  gdpr_optin: {source: profiles.consent}\n  city: {source",
        "gdpr_optin",
        "attributes.gdpr_optin: InsightIQ does not know consent, so gdpr_optin is never sent; remove it",
    )


def test_a_source_must_name_its_resource(tmp_path):
    bad(
        tmp_path,
        "source: profiles.username",
        "source: profile.username",
        "profile.username",
        "attributes.custom.handle.source: 'profile.username' is not resource.column; resource is one of "
        "accounts, profiles, users, contents, transactions, payouts, audience",
    )


def test_the_type_must_be_what_the_reducer_gives(tmp_path):
    bad(
        tmp_path,
        "      reduce: platforms\n      type: array",
        "      reduce: platforms\n      type: string",
        "connected_platforms:",
        "attributes.custom.connected_platforms: reduce platforms gives array, not type string: set type: "
        "array or pick another reducer",
    )


def test_a_default_attribute_keeps_insiders_type(tmp_path):
    bad(
        tmp_path,
        "    transform: age_years\n    type: integer",
        "    transform: age_years\n    type: string",
        ("transform: age_years", 1),
        "attributes.age.type: Insider types age as number; set type: number",
    )


def test_attribute_names_follow_insiders_rule(tmp_path):
    bad(
        tmp_path,
        "    handle: {",
        "    Handle: {",
        "Handle:",
        "attributes.custom.Handle: 'Handle' is not an Insider attribute name; "
        "use lowercase letters, digits and _",
    )


def test_event_where_and_skip_hook_are_part_of_the_schema(tmp_path):
    bad(
        tmp_path,
        "    key_params: [content_id]\n",
        "    key_params: [content_id]\n    where: {type: REELS}\n",
        "where: {type",
        "events.content_published.where.type must be a list; got 'REELS': write [REELS]",
    )
    text = GOOD.replace(
        "    key_params: [content_id]\n",
        "    key_params: [content_id]\n    where: {type: [REELS]}\n    skip_hook: true\n",
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    spec = load_mapping(path).events["content_published"]
    assert spec.where == (("type", ("REELS",)),) and spec.skip_hook
    assert "type" in spec.columns


def test_broken_yaml_names_the_line(tmp_path):
    text = GOOD.replace("  gender: {source: profiles.gender,", "  gender: {source: profiles.gender", 1)
    path = tmp_path / "insider_mapping.yaml"
    assert error_of(tmp_path, text) == (
        f"invalid mapping file\n{path}:{line_of(text, 'gender: {')}: not valid YAML: expected ',' or '}}', "
        "but got ':'"
    )


def test_every_problem_of_a_file_is_listed(tmp_path):
    text = GOOD.replace("  gender: {source: profiles.gender,", "  gender: {sorce: profiles.gender,", 1)
    text = text.replace("source: profiles.username", "source: profile.username", 1)
    lines = error_of(tmp_path, text).splitlines()
    assert len(lines) == 3 and lines[0] == "invalid mapping file"


def test_parse_mapping_without_a_file_names_the_key():
    import yaml

    raw = yaml.safe_load(GOOD)
    raw["rules"]["max_user_bytes"] = 6_000_000
    with pytest.raises(
        MappingError, match=r"rules\.max_user_bytes: Input should be less than or equal to 5000000"
    ):
        parse_mapping(raw)


def test_a_mapping_of_the_older_layout_says_how_to_move_its_platform_metrics(tmp_path):
    bad(
        tmp_path,
        "platform_attributes:\n",
        "platform_attributes:\n  from_profiles:\n    follower_count: reputation.follower_count\n",
        "from_profiles:",
        "platform_attributes.from_profiles: per-platform profile metrics are attributes: move each under "
        "attributes.custom as {source: profiles.<column>, reduce: sum_per_platform, type: integer}",
    )


def test_a_fallback_must_read_the_rows_its_source_reads(tmp_path):
    bad(
        tmp_path,
        "fallback: {source: profiles.full_name, transform: first_word",
        "fallback: {source: users.name, transform: first_word",
        "users.name",
        "attributes.name.fallback.source: users.name is not a column of profiles, the resource of "
        "profiles.first_name; name a profiles column",
    )
