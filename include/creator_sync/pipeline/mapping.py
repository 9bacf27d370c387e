"""Load the Insider mapping (``creator_sync/resources/insider_mapping.yaml``), validated by
``creator_sync.pipeline.mapping_schema``, into the small typed objects the transform runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from creator_sync.pipeline.mapping_schema import (
    LANGUAGE_FORMATS,
    PARAM_TYPES,
    AttributeSpec,
    EventSpecModel,
    IdentifierSpec,
    IncomeSpec,
    MappingError,
    MappingFile,
    ParamSpec,
    load_file,
    validate,
)
from creator_sync.settings import mapping_file

__all__ = ["LANGUAGE_FORMATS", "PARAM_TYPES", "Mapping", "MappingError", "load_mapping", "parse_mapping"]


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
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, allowed values): other rows are no event
    skip_hook: bool = False  # sent with skip_hook: true (history that must not trigger journeys)

    @property
    def columns(self) -> list[str]:
        cols = [self.user, self.timestamp, *(p.column for p in self.params + self.custom)]
        cols += [column for column, _ in self.where]
        return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class Mapping:
    require_contact_identifier: bool
    max_user_bytes: int
    # Insider field -> spec: "uuid", "email", "phone_number", "custom.<name>" (custom identifiers)
    identifiers: dict[str, IdentifierSpec]
    # output column -> spec: "<default attribute>" or "custom.<name>" (per platform: custom.<platform>_<name>)
    attributes: dict[str, AttributeSpec]
    content_metrics: dict[str, tuple[str, ...]]  # metric name -> contents columns summed
    events: dict[str, EventSpec] = field(default_factory=dict)
    language_format: str = "language"  # one of LANGUAGE_FORMATS: "en" as given, or "en_US"
    engagement_columns: dict[str, str] = field(default_factory=dict)  # likes/comments/shares/views -> column
    file: MappingFile | None = None  # the validated file (docs/mapping.md is generated from it)
    clear_contents: bool = True  # platform_attributes.clear: contents-based per-platform attributes
    income: IncomeSpec | None = None  # the income attributes (creator_sync.pipeline.income); None: none

    def cleared(self, window_names: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The per-platform attribute names (without `custom.` and the platform) removed at Insider when a
        platform has no connected account left: those of `attributes.custom` with clear on (opt-in
        ones without a source are never sent, so never cleared), then, with `platform_attributes.clear`,
        the contents-based ones (`from_contents`, and `window_names`: the engagement window's)."""
        names = [
            name.removeprefix("custom.")
            for name, spec in self.active().items()
            if isinstance(spec, AttributeSpec) and spec.clears
        ]
        if self.clear_contents:
            names += list(self.content_metrics)
            names += list(window_names) if self.engagement_columns else []
        return tuple(dict.fromkeys(names))

    def cleared_whole(self) -> dict[str, str]:
        """The custom attributes over all platforms (creators-frame column `custom.<name>`) cleared when a
        creator has no connected account left, each with how (`clear_as`: delete | empty_list)."""
        return {
            name: spec.clear_as
            for name, spec in self.active().items()
            if name.startswith("custom.") and isinstance(spec, AttributeSpec) and spec.clears_whole
        }

    def key_params(self, event_name: str) -> tuple[str, ...] | None:
        spec = self.events.get(event_name)
        return spec.key_params if spec else None

    def active(self) -> dict[str, AttributeSpec]:
        """The attributes that are sent: opt-in ones (no source) are off."""
        return {name: spec for name, spec in self.attributes.items() if spec.source is not None}


def _param(name: str, spec: ParamSpec) -> Param:
    return Param(name, spec.column, spec.type)


def _event(name: str, spec: EventSpecModel) -> EventSpec:
    return EventSpec(
        name=name,
        source=spec.source,
        user=spec.user,
        timestamp=spec.timestamp,
        key_params=tuple(spec.key_params),
        params=tuple(_param(n, p) for n, p in spec.params.items()),
        custom=tuple(_param(n, p) for n, p in spec.custom.items()),
        where=tuple((column, tuple(values)) for column, values in spec.where.items()),
        skip_hook=spec.skip_hook,
    )


def build(file: MappingFile) -> Mapping:
    ids = file.identifiers
    identifiers = {"uuid": ids.uuid}
    identifiers.update({k: v for k, v in (("email", ids.email), ("phone_number", ids.phone_number)) if v})
    identifiers.update({f"custom.{name}": spec for name, spec in ids.custom.items()})
    attributes = dict(file.attributes)
    attributes.update({f"custom.{name}": spec for name, spec in file.custom_attributes.items()})
    language = file.attributes.get("language")
    return Mapping(
        require_contact_identifier=file.rules.require_contact_identifier,
        max_user_bytes=file.rules.max_user_bytes,
        identifiers=identifiers,
        attributes=attributes,
        content_metrics={k: tuple(v) for k, v in file.platform_attributes.from_contents.items()},
        events={name: _event(name, spec) for name, spec in file.events.items()},
        language_format=(language.format if language and language.format else LANGUAGE_FORMATS[0]),
        engagement_columns=dict(file.platform_attributes.engagement_window),
        file=file,
        clear_contents=file.platform_attributes.clear,
        income=file.income if file.income and file.income.attributes else None,
    )


def parse_mapping(raw: dict, path: str = "<mapping>") -> Mapping:
    """A mapping from the file's parsed YAML (no line numbers in errors: `load_mapping` has them)."""
    return build(validate(raw, path))


def load_mapping(path: str | Path | None = None) -> Mapping:
    """The mapping at ``path``, by default the configured one (``creator_sync.settings.mapping_file``).
    A file that breaks the schema raises MappingError naming the file, the line and the fix."""
    return _load_mapping(str(path or mapping_file()))


@cache
def _load_mapping(path: str) -> Mapping:
    return build(load_file(path))
