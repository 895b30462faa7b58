"""The report as HTML: one self-contained page (inline CSS and SVG, no script, nothing fetched)
that prints on A4 landscape and reflows on a 320 px phone.

Every chart has a table with the same figures beside it, so nothing is told by a picture alone
(WCAG 1.1.1 and 1.3.1): the busiest-hours grid's counts are in a table of hours by days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from bot.reports import DAY_NAMES, Report, Row, saving_text

FIGURES = (
    "Group",
    "Messages in",
    "Automatic replies",
    "Human replies",
    "Out of hours",
    "Emergencies",
    "Possible emergencies",
    "Redirects",
    "Answered",
    "First reply, median",
    "90th percentile",
    "Median, working time",
    "90th pct, working time",
    "Promises kept",
)

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; color: #1b1b1b; margin: 2em auto; max-width: 90em;
  padding: 0 1em; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .85em; }
th, td { border: 1px solid #bbb; padding: .25em .5em; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef; }
caption { text-align: left; font-weight: 700; padding: .25em 0; }
.estimate { border-left: 4px solid #b58105; padding: .5em 1em; background: #fff8e5; }
svg { max-width: 100%; height: auto; }
svg text { font: 10px sans-serif; fill: #333; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; margin: 0; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); border: 0; white-space: nowrap; }
table.hours td, table.hours th { padding: .15em .35em; }
@media (max-width: 40em) {
  body { margin: 1em auto; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; }
  table.stack thead { position: absolute; left: -10000px; }
  table.stack tr { border-bottom: 2px solid #1b1b1b; padding: .25em 0; }
  table.stack td { border: 0; white-space: normal; text-align: left; padding: .1em 0; }
  table.stack td::before { content: attr(data-label) ": "; font-weight: 700; }
  table.stack td:first-child::before { content: none; }
  table.stack td:first-child { font-weight: 700; }
  table.hours { font-size: .75em; }
}
@page { size: A4 landscape; margin: 12mm; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
  table, svg { break-inside: avoid; } }
"""


def _esc(value: Any) -> str:
    return (
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours / 24:.1f} days"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _table(caption: str, headings: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table that becomes one labelled block per row on a narrow screen."""
    head = "".join(f'<th scope="col">{_esc(h)}</th>' for h in headings)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{_esc(h)}">{_esc(c)}</td>' for h, c in zip(headings, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<table class="stack"><caption class="visually-hidden">{_esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _figures_table(caption: str, rows: Iterable[Row]) -> str:
    cells = []
    for row in rows:
        f = row.figures
        share = _percent(f.promises_kept, f.with_promise)
        kept = f"{f.promises_kept} of {f.with_promise} ({share})"
        cells.append(
            (
                f.group,
                f.messages,
                f.auto_replies,
                f.human_replies,
                _percent(f.out_of_hours, f.messages),
                _percent(f.emergencies, f.messages),
                f.possible_emergencies,
                _percent(f.redirects, f.messages),
                f.answered,
                duration(f.median_seconds),
                duration(f.p90_seconds),
                duration(row.working_median_seconds),
                duration(row.working_p90_seconds),
                kept,
            )
        )
    return _table(caption, FIGURES, cells)


def _hours_svg(hours: list[list[int]]) -> str:
    cell_w, cell_h, left, top = 26, 20, 70, 16
    width, height = left + 24 * cell_w + 4, top + 7 * cell_h + 4
    most = max((c for day in hours for c in day), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Messages by hour of the week: the figures are in the table below">'
    ]
    for h in range(0, 24, 2):
        parts.append(f'<text x="{left + h * cell_w + 2}" y="11">{h:02d}</text>')
    for d, name in enumerate(DAY_NAMES):
        y = top + d * cell_h
        parts.append(f'<text x="0" y="{y + 14}">{name}</text>')
        for h in range(24):
            count = hours[d][h]
            shade = 0.08 + 0.92 * count / most if count else 0
            parts.append(
                f'<rect x="{left + h * cell_w}" y="{y}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" fill="#1d4f91" fill-opacity="{shade:.2f}" '
                f'stroke="#ddd"><title>{name} {h:02d}:00: {count}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _hours_table(hours: list[list[int]], timezone: str) -> str:
    """The heat map's figures: a row per hour, a column per day, so it fits a phone's width."""
    days = "".join(
        f'<th scope="col"><span aria-hidden="true">{name[:3]}</span>'
        f'<span class="visually-hidden">{name}</span></th>'
        for name in DAY_NAMES
    )
    rows = "".join(
        f'<tr><th scope="row">{h:02d}:00</th>'
        + "".join(f"<td>{hours[d][h]}</td>" for d in range(7))
        + "</tr>"
        for h in range(24)
    )
    return (
        f'<table class="hours" id="busiest-hours"><caption>Messages received in each hour '
        f"starting at the time shown, by day of the week ({_esc(timezone)})</caption>"
        f'<thead><tr><th scope="col">Hour</th>{days}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _backlog_svg(backlog: list[tuple[date, int, int, int]]) -> str:
    width, height, left, bottom = 720, 200, 40, 20
    if not backlog:
        return "<p>No days in the range.</p>"
    most = max(max(o for *_, o in backlog), 1)
    step = (width - left - 10) / max(len(backlog) - 1, 1)
    points = " ".join(
        f"{left + i * step:.1f},{10 + (height - bottom - 10) * (1 - o / most):.1f}"
        for i, (*_, o) in enumerate(backlog)
    )
    base = height - bottom
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Open items at the end of each day: the figures are in the table below">'
        f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>'
        f'<line x1="{left}" y1="10" x2="{left}" y2="{base}" stroke="#999"/>'
        f'<text x="0" y="14">{most}</text><text x="0" y="{base}">0</text>'
        f'<text x="{left}" y="{height - 4}">{backlog[0][0]}</text>'
        f'<text x="{width - 80}" y="{height - 4}">{backlog[-1][0]}</text>'
        f'<polyline points="{points}" fill="none" stroke="#1d4f91" stroke-width="2"/></svg>'
    )


def page(report: Report) -> str:
    last = report.end - timedelta(days=1)
    contacts = _table(
        "Contacts by channel",
        ("Channel", "Contacts", "Cost of one", "Estimated cost"),
        (
            (
                c,
                n,
                "–" if u is None else f"£{u:.2f}",
                "no unit cost set" if u is None else f"£{n * u:,.2f}",
            )
            for c, n, u in report.contacts
        ),
    )
    backlog = _table(
        "Backlog: open at the end of each day",
        ("Date", "Received", "Marked done", "Open at the end"),
        report.backlog,
    )
    title = f"{report.organisation}: report for {report.start} to {last}"
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>
<h1>{_esc(title)}</h1>
<p>Messages received from {report.start} to {last} inclusive; times in {_esc(report.timezone)}.
Generated {report.generated_at:%Y-%m-%d %H:%M} UTC. Replies are counted when they were sent.
Working time counts staffed hours only.</p>
<h2>Overall</h2>{_figures_table("Overall", [report.overall])}
<h2>By channel</h2>{_figures_table("By channel", report.by_channel)}
<h2>By team</h2>{_figures_table("By team", report.by_team)}
<h2>Busiest hours of the week</h2>{_hours_svg(report.hours)}
{_hours_table(report.hours, report.timezone)}
<h2>Backlog: open at the end of each day</h2>{_backlog_svg(report.backlog)}
{backlog}
<h2>Contacts by channel</h2>
{contacts}
<h2>Estimated saving</h2>
<p class="estimate"><strong>£{report.estimated_saving:,.2f}</strong>. {_esc(saving_text(report))}
</p>
</main></body></html>
"""
