"""HTML of the view's pages: plain server-rendered HTML with inline CSS and SVG, every value escaped."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from creator_sync.routes import URL_PREFIX
from creator_sync.store import DeadLetter
from creator_sync.ui import masking
from creator_sync.ui.charts import line_chart
from creator_sync.ui.figures import RunRow, vendor_limit, vendor_name

PREVIEW_CHARS = 400

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px 20px;color:#1f2328;
 font-size:14px;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:#59636e;margin:0 0 12px}
table{border-collapse:collapse;margin:4px 0 8px}th,td{border-bottom:1px solid #d1d9e0;padding:4px 8px;
 text-align:right;white-space:nowrap}th{background:#f6f8fa;font-weight:600}
td.l,th.l{text-align:left}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.muted{color:#59636e}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{border:1px solid #d1d9e0;border-radius:6px;background:#fff;font-size:11px;fill:#59636e}
svg .grid{stroke:#eef1f4}svg .limit{stroke:#cf222e;stroke-dasharray:6 4;stroke-width:1.5}
svg .chart-title{font-size:13px;font-weight:600;fill:#1f2328}svg .limit-label{fill:#cf222e}
pre{background:#f6f8fa;border:1px solid #d1d9e0;border-radius:6px;padding:8px;white-space:pre-wrap;
 max-width:980px;font-size:12px}
.msg{padding:8px 12px;border-radius:6px;margin:8px 0;max-width:980px}
.msg.info{background:#ddf4ff;border:1px solid #54aeff}.msg.error{background:#ffebe9;border:1px solid #ff8182}
button{background:#017cee;color:#fff;border:0;border-radius:4px;padding:4px 10px;cursor:pointer}
form{display:inline;margin:0}a{color:#0969da}.scroll{overflow-x:auto}th.group{text-align:center}
table.letters td{white-space:normal;vertical-align:top}table.letters td.detail{max-width:260px}
td code{display:block;min-width:420px;max-width:680px;word-break:break-word;font-size:12px}
"""


def _n(value: int | float | None) -> str:
    if value is None:
        return '<span class="muted">&ndash;</span>'
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def run_link(airflow_base: str, row: RunRow) -> str:
    href = f"{airflow_base}/dags/{quote(row.dag_id, safe='')}/runs/{quote(row.run_id, safe='')}"
    return f'<a href="{escape(href)}" target="_top">{escape(row.run_id)}</a>'


def _runs_table(rows: list[RunRow], airflow_base: str, vendors: list[str]) -> str:
    show_dag = len({r.dag_id for r in rows}) > 1
    fixed = ["run", *(["DAG"] if show_dag else []), "state"]
    head = (
        "<tr>"
        + "".join(f'<th class="l" rowspan="2">{name}</th>' for name in fixed)
        + "".join(f'<th rowspan="2">{name}</th>' for name in ("fetched", "sent", "rejected", "unchanged"))
        + "".join(f'<th colspan="3" class="group">{escape(vendor_name(v))}</th>' for v in vendors)
        + '<th class="l" rowspan="2">reconciliation</th><th class="l" rowspan="2"></th></tr><tr>'
        + "<th>requests</th><th>retries</th><th>429s</th>" * len(vendors)
        + "</tr>"
    )
    body = []
    for row in rows:
        recon_class = {"holds": "ok", "GAP": "bad"}.get(row.reconciliation, "muted")
        state = escape(row.state or ("ok" if row.ok else "failed"))
        if row.dry_run:
            state += ' <span class="muted">(dry run)</span>'
        cells = [f'<td class="l">{run_link(airflow_base, row)}</td>']
        if show_dag:
            cells.append(f'<td class="l">{escape(row.dag_id)}</td>')
        cells.append(f'<td class="l">{state}</td>')
        counts = {
            "fetched": row.fetched,
            "sent": row.sent,
            "rejected": row.rejected,
            "unchanged": row.unchanged,
        }
        cells += [f'<td data-figure="{name}">{_n(v)}</td>' for name, v in counts.items()]
        for vendor in vendors:
            figures = row.vendors.get(vendor)
            for counter in ("requests", "retries", "rate_limited_429"):
                value = getattr(figures, counter) if figures else None
                cells.append(f'<td data-figure="{escape(vendor)}-{counter}">{_n(value)}</td>')
        cells.append(f'<td class="l {recon_class}">{escape(row.reconciliation)}</td>')
        detail = f"{airflow_base}{URL_PREFIX}/runs/{quote(row.dag_id, safe='')}/{quote(row.run_id, safe='')}"
        cells.append(f'<td class="l"><a href="{escape(detail)}">report</a></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table class="runs">{head}{"".join(body)}</table></div>'


def _charts(rows: list[RunRow], vendors: list[str]) -> str:
    oldest_first = list(reversed(rows))
    labels = [r.created_at.strftime("%m-%d %H:%M") for r in oldest_first]
    charts = [
        line_chart(
            "Creators per run",
            labels,
            {
                "fetched": [r.fetched for r in oldest_first],
                "sent": [r.sent for r in oldest_first],
                "rejected": [r.rejected for r in oldest_first],
                "unchanged": [r.unchanged for r in oldest_first],
            },
        ),
        line_chart(
            "Requests, retries and 429s per run",
            labels,
            {
                f"{vendor_name(v)} {name}": [
                    getattr(r.vendors.get(v), counter, None) if r.vendors.get(v) else None
                    for r in oldest_first
                ]
                for v in vendors
                for name, counter in (
                    ("requests", "requests"),
                    ("retries", "retries"),
                    ("429s", "rate_limited_429"),
                )
            },
        ),
    ]
    for vendor in vendors:
        limit = vendor_limit(vendor)
        rates = [r.vendors[v].rate(r.seconds) if (v := vendor) in r.vendors else None for r in oldest_first]
        charts.append(
            line_chart(
                f"{vendor_name(vendor)}: average requests/s per run vs the vendor limit",
                labels,
                {"requests/s": rates},
                limit=limit,
                limit_label="limit req/s",
            )
        )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _dead_letter_table(
    counts: dict[str, tuple[int, int]], replay_allowed_reasons: set[str], airflow_base: str
) -> str:
    if not counts:
        return '<p class="muted">No dead letters.</p>'
    view = f"{escape(airflow_base)}{URL_PREFIX}"
    rows = []
    for reason, (pending, total) in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0])):
        button = '<span class="muted">not replayable</span>'
        if reason in replay_allowed_reasons and pending:
            button = (
                f'<form method="post" action="{view}/replay">'
                f'<input type="hidden" name="reason" value="{escape(reason)}">'
                f'<button type="submit">Replay {escape(reason)}</button>'
                "</form>"
            )
        elif reason in replay_allowed_reasons:
            button = '<span class="muted">nothing pending</span>'
        rows.append(
            f'<tr><td class="l"><a href="{view}/dead-letters?reason={quote(reason)}">'
            f"{escape(reason)}</a></td>"
            f'<td>{pending:,}</td><td>{total:,}</td><td class="l">{button}</td></tr>'
        )
    head = (
        '<tr><th class="l">reason</th><th>pending</th><th>all (incl. replayed)</th><th class="l"></th></tr>'
    )
    return f'<table class="dead-letters">{head}{"".join(rows)}</table>'


def overview(
    rows: list[RunRow],
    dead_letter_counts: dict[str, tuple[int, int]],
    *,
    airflow_base: str,
    replayable: set[str],
    message: tuple[str, str] | None = None,
) -> str:
    vendors = sorted({v for r in rows for v in r.vendors}, key=lambda v: (v != "insightiq", v))
    parts = [
        "<h1>Creator sync</h1>",
        '<p class="sub">Recent runs of the creator-sync DAGs (newest first), their dead letters, and the '
        "request rates against each vendor's documented limit.</p>",
    ]
    if message:
        kind, html_text = message
        parts.append(f'<div class="msg {escape(kind)}">{html_text}</div>')
    parts.append("<h2>Recent runs</h2>")
    parts.append(
        _runs_table(rows, airflow_base, vendors) if rows else '<p class="muted">No run reports yet.</p>'
    )
    if rows:
        parts.append("<h2>Over time</h2>" + _charts(rows, vendors))
    parts.append("<h2>Dead letters by reason</h2>")
    parts.append(_dead_letter_table(dead_letter_counts, replayable, airflow_base))
    return page("Creator sync", "".join(parts))


def run_report(row: RunRow | None, *, airflow_base: str, dag_id: str, run_id: str) -> str:
    if row is None:  # the ids from the URL are not echoed: a crafted link cannot put words on the page
        body = (
            '<h1>Run report</h1><p class="muted">No report stored for this run (yet): the report task '
            "writes it when the run gets there.</p>"
        )
        return page("Run report", body)
    vendors = sorted(row.vendors, key=lambda v: (v != "insightiq", v))
    body = (
        f"<h1>Run report: {run_link(airflow_base, row)}</h1>"
        f'<p class="sub">{escape(row.dag_id)}, stored {row.created_at:%Y-%m-%d %H:%M:%S} UTC. '
        f'<a href="{escape(airflow_base)}{URL_PREFIX}/">All runs</a></p>'
        + _runs_table([row], airflow_base, vendors)
        + (f"<pre>{escape(row.text)}</pre>" if row.text else "")
    )
    return page(f"Report {run_id}", body)


def preview(payload: dict, *, masked: bool = True) -> str:
    if masked:
        payload = masking.mask_payload(payload)
    first = {k: payload[k] for k in ("identifiers", "events") if k in payload}  # who first
    text = json.dumps({**first, **payload}, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " …"


def dead_letters(
    reason: str,
    letters: list[DeadLetter],
    *,
    airflow_base: str,
    pending: int,
    shown: int,
    masked: bool = True,
) -> str:
    """The dead letters of one reason; with `masked` (the default), emails and phone numbers are masked in
    the user, detail and preview columns (creator_sync.ui.masking)."""
    text = masking.mask_text if masked else str
    rows = "".join(
        f'<tr><td class="l">{escape(text(d.user_key))}</td>'
        f'<td class="l"><a href="{escape(airflow_base)}/dags/creator_sync/runs/{quote(d.run_id, safe="")}" '
        f'target="_top">{escape(d.run_id)}</a></td>'
        f'<td class="l">{d.created_at:%Y-%m-%d %H:%M}</td><td class="l detail">{escape(text(d.detail))}</td>'
        f'<td class="l"><code>{escape(preview(d.payload, masked=masked))}</code></td></tr>'
        for d in letters
    )
    head = (
        '<tr><th class="l">user</th><th class="l">run</th><th class="l">since</th><th class="l">detail</th>'
        '<th class="l">payload (preview)</th></tr>'
    )
    note = " Emails and phone numbers are masked (shown to users who may edit the DAG)." if masked else ""
    body = (
        f"<h1>Dead letters: {escape(reason)}</h1>"
        f'<p class="sub">{pending:,} pending; the oldest {shown:,} shown.{note} '
        f'<a href="{escape(airflow_base)}{URL_PREFIX}/">Back</a></p>'
        + (
            f'<table class="letters">{head}{rows}</table>'
            if letters
            else '<p class="muted">None pending.</p>'
        )
    )
    return page(f"Dead letters {reason}", body)
