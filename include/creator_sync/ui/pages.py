"""The view's pages: Jinja2 templates (``ui/templates/*.html``) with autoescape on, so every value from the
state store or the request is escaped by the template engine. This module only prepares the data (which
vendors, the charts, the masked dead-letter previews) and renders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from creator_sync.routes import URL_PREFIX
from creator_sync.store import DeadLetter
from creator_sync.ui import masking
from creator_sync.ui.charts import line_chart
from creator_sync.ui.figures import RunRow, vendor_limit, vendor_name

SYNC_DAG = "creator_sync"
PREVIEW_CHARS = 400


def figure(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("creator_sync.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        figure=figure, urlpart=lambda value: quote(str(value), safe=""), vendor_name=vendor_name
    )
    env.globals.update(
        view_prefix=URL_PREFIX,
        counts=("fetched", "sent", "rejected", "unchanged"),
        vendor_counters=("requests", "retries", "rate_limited_429"),
    )
    return env


TEMPLATES = _environment()


@dataclass(frozen=True)
class Banner:
    """The overview's message: a started replay (``dag_id``, ``reason``, ``run_id``) or a plain text."""

    kind: str  # "info" | "error"
    text: str = ""
    dag_id: str | None = None
    reason: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Letter:
    """One dead letter as shown: user, detail and preview already masked where they must be."""

    user: str
    run_id: str
    since: datetime
    detail: str
    preview: str


def _ordered_vendors(vendors) -> list[str]:
    return sorted(set(vendors), key=lambda v: (v != "insightiq", v))


def _charts(rows: list[RunRow], vendors: list[str]) -> list[Markup]:
    oldest_first = list(reversed(rows))
    labels = [r.created_at.strftime("%m-%d %H:%M") for r in oldest_first]
    counters = (("requests", "requests"), ("retries", "retries"), ("429s", "rate_limited_429"))
    charts = [
        line_chart(
            "Creators per run",
            labels,
            {
                name: [getattr(r, name) for r in oldest_first]
                for name in ("fetched", "sent", "rejected", "unchanged")
            },
        ),
        line_chart(
            "Requests, retries and 429s per run",
            labels,
            {
                f"{vendor_name(v)} {name}": [
                    getattr(r.vendors[v], counter) if v in r.vendors else None for r in oldest_first
                ]
                for v in vendors
                for name, counter in counters
            },
        ),
    ]
    for vendor in vendors:
        rates = [r.vendors[vendor].rate(r.seconds) if vendor in r.vendors else None for r in oldest_first]
        charts.append(
            line_chart(
                f"{vendor_name(vendor)}: average requests/s per run vs the vendor limit",
                labels,
                {"requests/s": rates},
                limit=vendor_limit(vendor),
                limit_label="limit req/s",
            )
        )
    return charts


def overview(
    rows: list[RunRow],
    dead_letter_counts: dict[str, tuple[int, int]],
    *,
    airflow_base: str,
    replayable: set[str],
    banner: Banner | None = None,
) -> str:
    vendors = _ordered_vendors(v for r in rows for v in r.vendors)
    by_pending = sorted(dead_letter_counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return TEMPLATES.get_template("overview.html").render(
        rows=rows,
        vendors=vendors,
        charts=_charts(rows, vendors) if rows else [],
        dead_letters=[(reason, pending, total) for reason, (pending, total) in by_pending],
        replayable=replayable,
        banner=banner,
        base=airflow_base,
    )


def run_report(row: RunRow | None, *, airflow_base: str) -> str:
    vendors = _ordered_vendors(row.vendors) if row else []
    return TEMPLATES.get_template("run_report.html").render(row=row, vendors=vendors, base=airflow_base)


def preview(payload: dict, *, masked: bool = True) -> str:
    if masked:
        payload = masking.mask_payload(payload)
    first = {k: payload[k] for k in ("identifiers", "events") if k in payload}  # who first
    text = json.dumps({**first, **payload}, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " …"


def dead_letters(
    reason: str, letters: list[DeadLetter], *, airflow_base: str, pending: int, masked: bool = True
) -> str:
    """The dead letters of one reason; with `masked` (the default), emails and phone numbers are masked in
    the user, detail and preview columns (creator_sync.ui.masking)."""
    text = masking.mask_text if masked else str
    shown = [
        Letter(text(d.user_key), d.run_id, d.created_at, text(d.detail), preview(d.payload, masked=masked))
        for d in letters
    ]
    return TEMPLATES.get_template("dead_letters.html").render(
        reason=reason,
        letters=shown,
        pending=pending,
        masked=masked,
        sync_dag=SYNC_DAG,
        base=airflow_base,
    )


def message(title: str, text: str) -> str:
    """A page with one fixed sentence."""
    return TEMPLATES.get_template("message.html").render(title=title, text=text)
