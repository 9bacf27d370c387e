"""The Insider ``language`` attribute's form, a mapping setting (``attributes.language.format``): ``language``
sends InsightIQ's "en" (the default), ``locale`` sends Insider's sample form "en_US"."""

from __future__ import annotations

import dataclasses
import json

import pytest

from creator_sync.pipeline.mapping import load_mapping, parse_mapping
from creator_sync.pipeline.transform import transform_run

from .factories import END, START, profile


def users(fetched, tmp_path, mapping, profiles) -> dict[str, dict]:
    result = transform_run(
        fetched(profiles=profiles), start=START, end=END, out_dir=tmp_path / "out", mapping=mapping
    )
    rows = [json.loads(line) for line in result.users_path.read_text().splitlines() if line]
    return {u["identifiers"]["uuid"]: u["attributes"] for u in rows}


PROFILES = [
    profile(
        "u1",
        "a1",
        "Instagram",
        "2024-04-01T00:00:00Z",
        country="us",
        language="EN",
        emails=[{"email_id": "a@example.com"}],
    ),
    profile(
        "u2", "a2", "Instagram", "2024-04-01T00:00:00Z", language="fr", emails=[{"email_id": "b@example.com"}]
    ),
]


def test_the_default_is_the_language_as_insightiq_gives_it(fetched, tmp_path):
    mapping = load_mapping()
    assert mapping.language_format == "language"
    got = users(fetched, tmp_path, mapping, PROFILES)
    assert (got["u1"]["language"], got["u2"]["language"]) == ("en", "fr")


def test_the_locale_format_joins_the_profile_country(fetched, tmp_path):
    mapping = dataclasses.replace(load_mapping(), language_format="locale")
    got = users(fetched, tmp_path, mapping, PROFILES)
    assert got["u1"]["language"] == "en_US"  # Insider's sample form
    assert got["u2"]["language"] == "fr"  # no country: the language alone, no invented locale


def test_an_unknown_format_says_which_are_allowed():
    import yaml

    from creator_sync.settings import mapping_file

    raw = yaml.safe_load(mapping_file().read_text())
    raw["attributes"]["language"]["format"] = "bcp47"
    with pytest.raises(ValueError, match=r"language\.format must be one of language, locale"):
        parse_mapping(raw)
