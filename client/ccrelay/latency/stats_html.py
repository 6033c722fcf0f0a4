"""`ccrelay stats --html FILE`: one self-contained page to look at, no network needed to view it.

No script, no external stylesheet, font or chart library: the charts are inline SVG drawn here,
so the page opens from a mail attachment or an S3 bucket as it is. It opens with the charts of
every backend together (latency percentiles over time, error rate, cache hit rate, cost against
the baseline, cumulative), then the saving with its assumptions, the request and attempt
tables, and the same charts per backend. A chart needs two points in time: with one, it says
so rather than draw an axis that starts and ends at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from itertools import accumulate

from ccrelay.latency.stats import SeriesPoint, StatsReport
from ccrelay.latency.stats_text import ATTEMPT_COLUMNS, REQUEST_COLUMNS, Column, Row

__all__ = ["SERIES_COLOURS", "render_html"]

SERIES_COLOURS = {
    "p50": "#1f77b4",
    "p95": "#ff7f0e",
    "p99": "#d62728",
    "error rate": "#9467bd",
    "cache hit rate": "#2ca02c",
    "cost": "#8c564b",
    "baseline": "#7f7f7f",
}
"""One colour per series, each used by nothing else on the page (a test looks for them)."""

_W, _H = 520, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:12px 0 4px}
.table{overflow-x:auto}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{padding:3px 6px;border-bottom:1px solid #ddd;white-space:nowrap}
td.n,th.n{text-align:right}.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{border:1px solid #ddd;padding:6px}.legend span{margin-right:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
.note{color:#555}
"""


def _chart(
    title: str,
    points: Sequence[SeriesPoint],
    series: dict[str, Sequence[float | None]],
    unit: str,
) -> str:
    """A line chart of ``series`` (one value per bucket of ``points``); a bucket with no value
    breaks its line."""
    if len(points) < 2:
        when = f" ({escape(points[0].start)})" if points else ""
        return (
            f'<div class="chart"><h3>{escape(title)}</h3>'
            f'<p class="note">One point in time so far{when}: a chart needs two. '
            "A longer window (--since) or more traffic draws it.</p></div>"
        )
    values = [v for line in series.values() for v in line if v is not None]
    top = max(values, default=0.0) or 1.0
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    count = len(points) - 1

    def x(i: int) -> float:
        return _LEFT + inner_w * i / count

    def y(v: float) -> float:
        return _TOP + inner_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{_LEFT}" y1="{_TOP + inner_h}" x2="{_W - _RIGHT}" y2="{_TOP + inner_h}" '
        'stroke="#999"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + inner_h}" stroke="#999"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 10}" text-anchor="end" font-size="10">'
        f"{escape(_axis(top, unit))}</text>",
        f'<text x="{_LEFT - 4}" y="{_TOP + inner_h}" text-anchor="end" font-size="10">0</text>',
    ]
    if not values:
        parts.append(
            f'<text x="{_LEFT + inner_w / 2:.0f}" y="{_TOP + inner_h / 2:.0f}" '
            'text-anchor="middle" font-size="12" fill="#777">nothing reported</text>'
        )
    parts.append(f'<text x="{_LEFT}" y="{_H - 8}" font-size="10">{escape(points[0].start)}</text>')
    parts.append(
        f'<text x="{_W - _RIGHT}" y="{_H - 8}" text-anchor="end" font-size="10">'
        f"{escape(points[-1].start)}</text>"
    )
    for name, line_values in series.items():
        colour = SERIES_COLOURS[name]
        run: list[str] = []
        runs: list[list[str]] = []
        for i, value in enumerate(line_values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{x(i):.1f},{y(value):.1f}")
        if run:
            runs.append(run)
        for line in runs:
            if len(line) == 1:
                cx, cy = line[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" '
                    f'points="{" ".join(line)}"/>'
                )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="swatch" style="background:{SERIES_COLOURS[name]}"></i>'
        f"{escape(name)}</span>"
        for name in series
    )
    return (
        f'<div class="chart"><h3>{escape(title)}</h3>{"".join(parts)}'
        f'<div class="legend">{legend}</div></div>'
    )


def _axis(top: float, unit: str) -> str:
    if unit == "%":
        return f"{top * 100:.0f}%"
    if unit == "$":
        return f"${top:.2f}" if top >= 0.01 else f"${top:.4f}"
    return f"{top:.0f} {unit}"


def _cumulative(values: Iterable[float]) -> list[float | None]:
    return list(accumulate(values))


def _section(heading: str, points: Sequence[SeriesPoint]) -> str:
    def each(pick: Callable[[SeriesPoint], float | None]) -> list[float | None]:
        return [pick(p) for p in points]

    charts = [
        _chart(
            "latency of successful attempts",
            points,
            {
                "p50": each(lambda p: p.latency_p50_ms),
                "p95": each(lambda p: p.latency_p95_ms),
                "p99": each(lambda p: p.latency_p99_ms),
            },
            "ms",
        ),
        _chart(
            "error rate of attempts",
            points,
            {"error rate": each(lambda p: p.errors / p.calls if p.calls else None)},
            "%",
        ),
        _chart(
            "cache hit rate (where reported)",
            points,
            {
                "cache hit rate": each(
                    lambda p: p.cache_hits / p.cache_reported if p.cache_reported else None
                )
            },
            "%",
        ),
        _chart(
            "cost against the Anthropic baseline (cumulative)",
            points,
            {  # the baseline first: where they coincide (Anthropic) the cost is drawn on top
                "baseline": _cumulative(p.baseline_usd for p in points),
                "cost": _cumulative(p.cost_usd for p in points),
            },
            "$",
        ),
    ]
    return f'<h2>{escape(heading)}</h2><div class="charts">{"".join(charts)}</div>'


def _html_table(columns: Sequence[Column[Row]], rows: Sequence[Row], total: Row) -> str:
    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f"<{tag}>{v}</{tag}>" if i < 2 else f'<{tag} class="n">{v}</{tag}>'
            for i, v in enumerate(values)
        )

    head = cells([escape(c.header).replace(" ", "&nbsp;") for c in columns], "th")
    everything: list[Row] = list(rows)
    everything.append(total)
    body = "".join(
        f"<tr>{cells([escape(c.cell(row)) for c in columns], 'td')}</tr>" for row in everything
    )
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def render_html(report: StatsReport) -> str:
    """The whole page. ``report`` must have been computed with ``series=True``."""
    window = f"{report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    savings = report.savings
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>ccrelay stats {escape(window)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>ccrelay: latency, errors and cost, {escape(window)}</h1>",
    ]
    if not report.rows and not report.requests:
        parts.append("<p>No records in this window.</p></body></html>")
        return "".join(parts)
    minutes = report.bucket_s / 60
    parts.append(_section("All backends", report.overall))
    parts.append(f'<p class="note">Charts: one point per {minutes:g} minutes.</p>')
    if savings.requests:
        share = savings.saving_usd / savings.baseline_usd if savings.baseline_usd else 0.0
        parts.append(
            f"<p><b>Saved ${savings.saving_usd:.2f}</b> ({share * 100:.0f}%) over "
            f"{savings.requests} requests: cost ${savings.cost_usd:.4f} against "
            f"${savings.baseline_usd:.4f} on Anthropic. Projected monthly saving at this "
            f"window's rate: <b>${savings.monthly_saving_usd:.2f}</b>.</p>"
        )
        guesses = [
            f"{model}: not in the price table; priced as {known}, its family's newest known"
            for model, known in savings.priced_as.items()
        ]
        parts.append(
            '<p class="note">Assumed:</p><ul class="note">'
            + "".join(f"<li>{escape(a)}</li>" for a in [*savings.assumptions, *guesses])
            + "</ul>"
        )
    if report.requests:
        parts.append("<h2>Requests (what the client got)</h2>")
        parts.append(_html_table(REQUEST_COLUMNS, report.requests, report.requests_total))
    if report.rows:
        parts.append("<h2>Attempts (each try at a backend)</h2>")
        parts.append(_html_table(ATTEMPT_COLUMNS, report.rows, report.total))
    for backend, points in report.series.items():
        parts.append(_section(backend, points))
    parts.append("</body></html>")
    return "".join(parts)
