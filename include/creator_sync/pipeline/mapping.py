"""Load the Insider mapping (``creator_sync/resources/insider_mapping.yaml``) into small typed objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from creator_sync.settings import mapping_file

PARAM_TYPES = {"string", "upper", "platform", "integer", "number"}


def insider_name(value: str) -> str:
    """Attribute/platform name the way Insider names attributes: lowercase, `_` between words."""
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_")


@dataclass(frozen=True)
class Param:
    name: str
    column: str
    type: str


@dataclass(frozen=True)
class EventSpec:
    name: str
    source: str
    user: str
    timestamp: str
    key_params: tuple[str, ...]
    params: tuple[Param, ...]
    custom: tuple[Param, ...]

    @property
    def columns(self) -> list[str]:
        cols = [self.user, self.timestamp, *(p.column for p in self.params + self.custom)]
        return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class Mapping:
    require_contact_identifier: bool
    max_user_bytes: int
    sources: dict[str, str]  # Insider field -> source column (identifiers and default attributes)
    profile_metrics: dict[str, str]  # metric name -> profiles column
    content_metrics: dict[str, tuple[str, ...]]  # metric name -> contents columns summed
    events: dict[str, EventSpec] = field(default_factory=dict)
    language_format: str = "language"  # one of LANGUAGE_FORMATS: "en" as given, or "en_US"

    def key_params(self, event_name: str) -> tuple[str, ...] | None:
        spec = self.events.get(event_name)
        return spec.key_params if spec else None


# The forms of the Insider ``language`` attribute (mapping ``attributes.language.format``): ``language`` =
# the ISO 639-1 code InsightIQ gives ("en"), ``locale`` = language + "_" + the profile's country ("en_US",
# Insider's sample form). The first is the default.
LANGUAGE_FORMATS = ("language", "locale")


def _language_format(attrs: dict) -> str:
    value = (attrs.get("language") or {}).get("format", LANGUAGE_FORMATS[0])
    if value not in LANGUAGE_FORMATS:
        raise ValueError(
            f"mapping attributes.language.format must be one of {', '.join(LANGUAGE_FORMATS)} "
            f"(language: 'en' as InsightIQ gives it; locale: 'en_US' from the profile country), got {value!r}"
        )
    return value


def _column(source: str) -> str:
    """`profiles.first_name` -> `first_name` (the resource prefix documents where it comes from)."""
    return source.split(".", 1)[1]


def _params(raw: dict | None) -> tuple[Param, ...]:
    out = []
    for name, spec in (raw or {}).items():
        if spec["type"] not in PARAM_TYPES:
            raise ValueError(f"param {name}: unknown type {spec['type']!r}; one of {sorted(PARAM_TYPES)}")
        out.append(Param(name, spec["column"], spec["type"]))
    return tuple(out)


def parse_mapping(raw: dict) -> Mapping:
    ids, attrs = raw["identifiers"], raw["attributes"]
    sources = {name: _column(spec["source"]) for name, spec in ids.items() if name != "custom"}
    sources["phone_region"] = _column(ids["phone_number"]["region_from"])
    sources.update({f"custom.{k}": _column(v["source"]) for k, v in ids.get("custom", {}).items()})
    sources.update({name: _column(spec["source"]) for name, spec in attrs.items()})
    events = {
        name: EventSpec(
            name=name,
            source=spec["source"],
            user=spec["user"],
            timestamp=spec["timestamp"],
            key_params=tuple(spec.get("key_params", ())),
            params=_params(spec.get("params")),
            custom=_params(spec.get("custom")),
        )
        for name, spec in (raw.get("events") or {}).items()
    }
    platform = raw.get("platform_attributes") or {}
    rules = raw.get("rules") or {}
    return Mapping(
        require_contact_identifier=bool(rules.get("require_contact_identifier", True)),
        max_user_bytes=int(rules.get("max_user_bytes", 4_999_900)),
        sources=sources,
        profile_metrics=dict(platform.get("from_profiles") or {}),
        content_metrics={k: tuple(v) for k, v in (platform.get("from_contents") or {}).items()},
        events=events,
        language_format=_language_format(attrs),
    )


def load_mapping(path: str | Path | None = None) -> Mapping:
    """The mapping at ``path``, by default the configured one (``creator_sync.settings.mapping_file``)."""
    return _load_mapping(str(path or mapping_file()))


@cache
def _load_mapping(path: str) -> Mapping:
    return parse_mapping(yaml.safe_load(Path(path).read_text()))
