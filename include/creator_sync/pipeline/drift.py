"""Schema drift: the fetched files' columns against the mapping's (Parquet metadata only, no data read).

`unmapped`: source fields the run's files hold that no identifier, attribute or event reads (a new
InsightIQ field shows here before anyone maps it); `missing`: mapped fields no file of the run has (a
renamed or dropped field, or a product the account does not sync). Only resources the run fetched count.
The mapping and source modules (pandas, pyarrow) are imported where the drift is computed: the report task
only renders it (drift_line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from creator_sync.pipeline.mapping import Mapping
    from creator_sync.pipeline.sources import Inputs

SHOWN = 5  # names listed per kind in the run report


def mapped_columns(m: Mapping) -> dict[str, set[str]]:
    """resource -> the columns some identifier, attribute or event of the mapping reads."""
    from creator_sync.pipeline.creators import source_columns

    out = {resource: set(cols) for resource, cols in source_columns(m).items()}
    for spec in m.events.values():
        out.setdefault(spec.source, set()).update(spec.columns)
        if spec.source == "contents":
            out[spec.source].update(c for cols in m.content_metrics.values() for c in cols)
            out[spec.source].update(m.engagement_columns.values())
    return out


def schema_drift(inputs: Inputs, m: Mapping) -> dict[str, list[str]]:
    """{"unmapped": ["profiles.bio", ...], "missing": ["profiles.date_of_birth", ...]} (sorted)."""
    from creator_sync.pipeline.sources import SWEEPS, unified_schema

    mapped = mapped_columns(m)
    unmapped, missing = set(), set()
    seen: dict[str, set[str]] = {}
    for label, paths in inputs.items():
        resource = SWEEPS.get(label, label)
        names = set(unified_schema(list(paths or [])).names)
        if names:
            seen.setdefault(resource, set()).update(names)
    for resource, names in seen.items():
        wanted = mapped.get(resource, set())
        unmapped |= {f"{resource}.{name}" for name in names - wanted}
        missing |= {f"{resource}.{name}" for name in wanted - names}
    return {"unmapped": sorted(unmapped), "missing": sorted(missing)}


def drift_line(drift: dict[str, list[str]]) -> str | None:
    """The run report's line; None without drift."""
    parts = []
    for kind, words in (
        ("unmapped", "source field(s) seen but unmapped"),
        ("missing", "mapped field(s) absent"),
    ):
        names = drift.get(kind) or []
        if names:
            more = f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else ""
            parts.append(f"{len(names)} {words}: {', '.join(names[:SHOWN])}{more}")
    if not parts:
        return None
    return "Schema drift: " + "; ".join(parts) + " (docs/mapping.md says how to map a field)."
