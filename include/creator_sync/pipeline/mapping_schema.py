"""The schema of ``insider_mapping.yaml`` (pydantic): what each key may hold, checked when the file loads.

A file that breaks it raises ``MappingError`` naming the file, the line of the offending key or value (from
PyYAML's node marks), what is wrong and how to fix it. The transforms and reducers an attribute may name
are the ones ``creator_sync.pipeline.reducers`` registers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from creator_sync.pipeline.reducers import REDUCERS, TRANSFORMS
from creator_sync.pipeline.sources import RESOURCES, SWEEPS

# Insider's attribute types (docs: String, Number, Boolean, Date/Time, arrays); integer is a Number sent
# without a fraction, date a Date/Time in RFC 3339 UTC ("1993-03-12T00:00:00Z"), array a list of strings.
INSIDER_TYPES = ("string", "integer", "number", "boolean", "date", "array", "number_array")
PARAM_TYPES = ("string", "upper", "platform", "integer", "number")
# the resources an attribute or event reads (creator_sync.pipeline.sources.RESOURCES without the sweeps)
# what a mapping may read: the fetch step's resources (a weekly sweep's input is read as its event source)
SOURCE_RESOURCES = tuple(name for name in RESOURCES if name not in SWEEPS)
LANGUAGE_FORMATS = ("language", "locale")
# Insider's attribute naming: lowercase letters, digits and "_"
NAME_RE = r"^[a-z][a-z0-9_]*$"
# Insider's default attributes (the Upsert API's table); any other attribute goes under `custom`
INSIDER_DEFAULT_ATTRIBUTES = {
    "name": "string",
    "surname": "string",
    "birthday": "date",
    "gender": "string",
    "age": "number",
    "language": "string",
    "country": "string",
    "city": "string",
}
# The income attributes (creator_sync.pipeline.income; the mapping's `income.attributes` names the ones sent):
# name -> (Insider type, one attribute per currency: custom.{name}_{currency in lower case}, what it is).
# Per currency because Insider attributes are flat (no object type) and amounts of two currencies never add.
INCOME_ATTRIBUTES: dict[str, tuple[str, bool, str]] = {
    "earnings_30d": ("number", True, "sum of the counted transactions of the last 30 days, per currency"),
    "earnings_lifetime": ("number", True, "sum of every counted transaction kept, per currency"),
    "last_payout_at": ("date", False, "time of the newest counted payout"),
    "last_payout_amount": ("number", False, "the newest counted payout's amount"),
    "last_payout_currency": ("string", False, "its currency (ISO 4217, upper case)"),
}
# never sent: InsightIQ does not know a creator's consent
CONSENT_ATTRIBUTES = ("email_optin", "gdpr_optin", "sms_optin", "whatsapp_optin")


class MappingError(ValueError):
    """The mapping file is not valid: the message names the file, the line, the problem and the fix."""


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Source = Annotated[str, Field(pattern=r"^(" + "|".join(SOURCE_RESOURCES) + r")\.[A-Za-z0-9_.]+$")]
Name = Annotated[str, Field(pattern=NAME_RE)]
TransformName = Literal[tuple(TRANSFORMS)]  # type: ignore[valid-type]
ReducerName = Literal[tuple(REDUCERS)]  # type: ignore[valid-type]
Transforms = Annotated[list[TransformName], BeforeValidator(_listify)]
DefaultName = Literal[tuple(INSIDER_DEFAULT_ATTRIBUTES)]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rules(_Strict):
    require_contact_identifier: bool = True
    max_user_bytes: int = Field(4_999_900, gt=0, le=5_000_000)


class IdentifierSpec(_Strict):
    source: Source
    transform: Transforms = []
    region_from: Source | None = None
    reduce: Literal["newest", "last_row"] = "newest"
    type: Literal["string"] = "string"
    doc: str = ""


class Identifiers(_Strict):
    uuid: IdentifierSpec
    email: IdentifierSpec | None = None
    phone_number: IdentifierSpec | None = None
    custom: dict[Name, IdentifierSpec] = {}


class Fallback(_Strict):
    source: Source
    transform: Transforms = []
    when_empty: list[Source] = []  # the fallback applies only where these columns are empty too


class AttributeSpec(_Strict):
    """One attribute: a source column, row transforms, then a reducer over the creator's rows."""

    source: Source | None = None  # None: an opt-in attribute, off until the mapping names a source
    transform: Transforms = []
    fallback: Fallback | None = None
    reduce: ReducerName = "newest"
    type: Literal[INSIDER_TYPES] = "string"  # type: ignore[valid-type]
    where: dict[str, list[str]] = {}  # keep only the rows whose column holds one of these values
    # the item field(s) naming a list column's items (top_items: code, name; several: joined by "_",
    # lower case: [gender, age_range] -> female_25-34)
    key: str | list[str] | None = None
    top: int = Field(3, ge=1, le=50)  # top_items / top_shares: how many items
    format: Literal[LANGUAGE_FORMATS] | None = None  # type: ignore[valid-type]
    # per-platform attributes: removed at Insider when none of the creator's accounts on the platform is
    # CONNECTED any more; a custom attribute over all platforms with clear: true: removed when none of the
    # creator's accounts is CONNECTED any more (creator_sync.pipeline.clearing). None = on for per-platform
    # attributes, off for the others
    clear: bool | None = None
    # how an attribute over all platforms is cleared: delete (Delete User Attribute, documented) or, for an
    # array, empty_list (the upsert sends [] with not_append; Insider's docs neither allow nor refuse an
    # empty array, so this is for an account whose Insider is known to take it)
    clear_as: Literal["delete", "empty_list"] = "delete"
    # only the rows of accounts that are CONNECTED or of unknown status (profiles by their account.id): a
    # total over platforms counts no disconnected account
    connected_only: bool = False
    doc: str = ""

    @property
    def clears(self) -> bool:
        """Whether the attribute is cleared when the creator has no connected account on its platform."""
        return REDUCERS[self.reduce].per_platform and self.clear is not False

    @property
    def clears_whole(self) -> bool:
        """Whether the attribute (over all platforms) is cleared when the creator has no connected account."""
        return not REDUCERS[self.reduce].per_platform and self.clear is True

    @model_validator(mode="after")
    def _reducer_fits_type(self) -> AttributeSpec:
        want = REDUCERS[self.reduce].types
        if self.source is not None and self.type not in want:
            raise ValueError(
                f"reduce {self.reduce} gives {' or '.join(want)}, not type {self.type}: "
                f"set type: {want[0]} or pick another reducer"
            )
        if REDUCERS[self.reduce].needs_key and not self.key:
            raise ValueError(
                f"reduce {self.reduce} reads items of a list: add key: (the item field, e.g. code)"
            )
        if self.clear_as == "empty_list" and self.type not in ("array", "number_array"):
            raise ValueError(
                f"clear_as: empty_list sends an empty array; type {self.type} is not an array: use "
                "clear_as: delete"
            )
        if self.clear_as == "empty_list" and not self.clears_whole:
            raise ValueError(
                "clear_as applies to an attribute over all platforms with clear: true; add clear: true"
            )
        return self


class PlatformAttributes(_Strict):
    """Per-platform sums of content columns over the content items published inside the run's data
    interval (computed while the contents stream by: creator_sync.pipeline.transform)."""

    from_contents: dict[Name, list[str]] = {}
    # the contents columns of the engagement-window attributes (creator_sync.pipeline.engagement)
    engagement_window: dict[Literal["likes", "comments", "shares", "views"], str] = {}
    # both kinds above are cleared at Insider for a platform none of whose accounts is CONNECTED any more
    clear: bool = True


class ParamSpec(_Strict):
    column: str
    type: Literal[PARAM_TYPES]  # type: ignore[valid-type]


class EventSpecModel(_Strict):
    source: Literal[SOURCE_RESOURCES]  # type: ignore[valid-type]
    user: str
    timestamp: str
    key_params: list[str] = []
    params: dict[Name, ParamSpec] = {}
    custom: dict[Name, ParamSpec] = {}
    where: dict[str, list[str]] = {}  # keep only the rows whose column holds one of these values
    skip_hook: bool = False  # sent with skip_hook: true (history that must not trigger journeys)

    @model_validator(mode="after")
    def _key_params_exist(self) -> EventSpecModel:
        known = set(self.params) | set(self.custom)
        missing = [k for k in self.key_params if k not in known]
        if missing:
            raise ValueError(
                f"key_params {missing} are not params of the event: name params or custom params"
            )
        return self


class IncomeAttribute(_Strict):
    type: Literal["string", "number", "date"]
    doc: str | None = None


class IncomeSpec(_Strict):
    """The income attributes, computed from the income items kept in state (creator_sync.pipeline.income)."""

    # the statuses whose items count (a transaction without a status counts: see docs/mapping.md)
    transaction_statuses: list[str] = ["COMPLETED"]
    payout_statuses: list[str] = ["PAID"]
    attributes: dict[Literal[tuple(INCOME_ATTRIBUTES)], IncomeAttribute] = {}  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _types_are_insiders(self) -> IncomeSpec:
        wrong = {n: a.type for n, a in self.attributes.items() if a.type != INCOME_ATTRIBUTES[n][0]}
        if wrong:
            fix = ", ".join(f"{n}: type {INCOME_ATTRIBUTES[n][0]}" for n in wrong)
            raise ValueError(f"income attributes have fixed types; set {fix}")
        return self

    def statuses(self, kind: str) -> tuple[str, ...]:
        """The counted statuses of a kind of item (transaction | payout), upper case."""
        chosen = self.transaction_statuses if kind == "transaction" else self.payout_statuses
        return tuple(s.strip().upper() for s in chosen)


class MappingFile(_Strict):
    """The whole file. Default attributes keep Insider's types; per-platform reducers only under custom."""

    version: Literal[1]
    rules: Rules = Rules()
    identifiers: Identifiers
    attributes: dict[DefaultName, AttributeSpec] = {}
    custom_attributes: dict[Name, AttributeSpec] = {}  # the file's attributes.custom (see `validate`)
    platform_attributes: PlatformAttributes = PlatformAttributes()
    events: dict[Name, EventSpecModel] = {}
    income: IncomeSpec | None = None


def _same_resource(loc: tuple, spec) -> list[tuple[tuple, str]]:
    """A fallback, its when_empty columns and region_from read the rows the source reads."""
    if spec.source is None:
        return []
    resource = spec.source.split(".", 1)[0]
    fallback = getattr(spec, "fallback", None)
    others = [(("region_from",), getattr(spec, "region_from", None))]
    if fallback is not None:
        others.append((("fallback", "source"), fallback.source))
        others += [(("fallback", "when_empty", i), c) for i, c in enumerate(fallback.when_empty)]
    return [
        (
            loc + where,
            f"{other} is not a column of {resource}, the resource of {spec.source}; name a {resource} column",
        )
        for where, other in others
        if other is not None and other.split(".", 1)[0] != resource
    ]


def _cross_checks(file: MappingFile) -> list[tuple[tuple, str]]:
    """(location, message) of what one key alone cannot tell: default attributes keep Insider's types,
    per-platform reducers only under custom, a fallback reads the source's resource."""
    problems = []
    for name in file.identifiers.model_dump(exclude={"custom"}, exclude_none=True):
        problems += _same_resource(("identifiers", name), getattr(file.identifiers, name))
    for name, spec in file.identifiers.custom.items():
        problems += _same_resource(("identifiers", "custom", name), spec)
    for name, spec in file.attributes.items():
        problems += _same_resource(("attributes", name), spec)
    for name, spec in file.custom_attributes.items():
        problems += _same_resource(("attributes", "custom", name), spec)
    for name, spec in file.attributes.items():
        insider = INSIDER_DEFAULT_ATTRIBUTES[name]
        if spec.type != insider and not (insider == "number" and spec.type == "integer"):
            problems.append(
                (("attributes", name, "type"), f"Insider types {name} as {insider}; set type: {insider}")
            )
        if REDUCERS[spec.reduce].per_platform:
            problems.append(
                (
                    ("attributes", name, "reduce"),
                    f"{spec.reduce} gives one attribute per platform; move {name} under attributes.custom",
                )
            )
        if spec.clear:
            problems.append(
                (
                    ("attributes", name, "clear"),
                    f"clear removes custom attributes only (Delete User Attribute's custom.whole); remove "
                    f"clear from {name}",
                )
            )
    return problems + _income_sources(file)


def _income_sources(file: MappingFile) -> list[tuple[tuple, str]]:
    """The income items come from the rows the transform reads for the events: an income attribute needs an
    event over its source (earnings: transactions; the last payout: payouts)."""
    if file.income is None:
        return []
    sources = {spec.source for spec in file.events.values()}
    problems = []
    for name in file.income.attributes:
        source = "payouts" if name.startswith("last_payout") else "transactions"
        if source not in sources:
            problems.append(
                (
                    ("income", "attributes", name),
                    f"{name} is computed from the {source} the runs read for an event: add an event with "
                    f"source: {source} (payout_received / income_received) or remove {name}",
                )
            )
    return problems


# --- errors with file and line ----------------------------------------------------------------------------
def _node_at(node: yaml.Node | None, loc: tuple) -> yaml.Node | None:
    """The YAML node at a pydantic error location: the key of the last step (its line is the one a reader
    looks for, also when the value is a block below it); a missing key -> the mapping that lacks it."""
    last = node
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return last
            last, node = pair
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            last = node = node.value[part]
        else:
            return last
    return last


def _location(loc: tuple) -> tuple:
    """pydantic's location as the file's path: without internal steps (function-after[...], [key]),
    custom_attributes back under attributes.custom."""
    loc = tuple(p for p in loc if not (isinstance(p, str) and re.search(r"[\[\]]", p)))
    if loc[:1] == ("custom_attributes",):
        loc = ("attributes", "custom", *loc[1:])
    return loc


def _describe(where: str, error: dict) -> str:
    """`<where>: <what is wrong and how to fix it>` for one pydantic error."""
    msg, kind, got = str(error["msg"]).removeprefix("Value error, "), error["type"], error.get("input")
    if kind == "extra_forbidden" and where == "platform_attributes.from_profiles":
        return (
            f"{where}: per-platform profile metrics are attributes: move each under attributes.custom as "
            "{source: profiles.<column>, reduce: sum_per_platform, type: integer}"
        )
    if kind == "extra_forbidden":
        return f"{where}: unknown key; remove it or check its spelling (docs/mapping.md lists the keys)"
    if kind == "missing":
        return f"{where}: required key missing; add it"
    if kind == "literal_error" and error["loc"][0] == "attributes" and error["loc"][-1] == "[key]":
        if got in CONSENT_ATTRIBUTES:
            return f"{where}: InsightIQ does not know consent, so {got} is never sent; remove it"
        return (
            f"{where}: {got!r} is not one of Insider's default attributes "
            f"({', '.join(INSIDER_DEFAULT_ATTRIBUTES)}); move it under attributes.custom"
        )
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"{where} must be one of {', '.join(choices)}; got {got!r}"
    if kind == "list_type":
        return f"{where} must be a list; got {got!r}: write [{got}]"
    if kind == "string_pattern_mismatch":
        if error.get("ctx", {}).get("pattern") == NAME_RE:
            return f"{where}: {got!r} is not an Insider attribute name; use lowercase letters, digits and _"
        return f"{where}: {got!r} is not resource.column; resource is one of {', '.join(SOURCE_RESOURCES)}"
    return f"{where}: {msg}"


def format_errors(path: str, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = _location(error["loc"])
        line = _line(root, loc)
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{path}:{line}: {_describe(where, error)}")
    return "invalid mapping file\n" + "\n".join(lines)


def load_file(path: str | Path) -> MappingFile:
    """Parse and validate a mapping file; MappingError with file:line on any problem."""
    text = Path(path).read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise MappingError(f"invalid mapping file\n{path}:{line}: not valid YAML: {exc.problem}") from None
    return validate(raw, str(path), root)


def validate(raw: Any, path: str = "<mapping>", root: yaml.Node | None = None) -> MappingFile:
    if not isinstance(raw, dict):
        raise MappingError(f"invalid mapping file\n{path}:1: the file must be a YAML mapping (key: value)")
    attributes = raw.get("attributes")
    if isinstance(attributes, dict) and "custom" in attributes:
        attributes = dict(attributes)
        raw = {**raw, "attributes": attributes, "custom_attributes": attributes.pop("custom") or {}}
    try:
        file = MappingFile.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(format_errors(path, root, exc)) from None
    problems = _cross_checks(file)
    if problems:
        lines = [
            f"{path}:{_line(root, loc)}: {'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in problems
        ]
        raise MappingError("invalid mapping file\n" + "\n".join(lines))
    return file


def _line(root: yaml.Node | None, loc: tuple) -> int:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else 1
