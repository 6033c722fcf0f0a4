"""`ccrelay stats` as plain-text tables (requests, then attempts, then the money) or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ccrelay.latency.stats import GroupStats, RequestStats, StatsReport

__all__ = ["ATTEMPT_COLUMNS", "REQUEST_COLUMNS", "Column", "render_table", "report_json"]

Row = TypeVar("Row", GroupStats, RequestStats)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column of a table: its header and how a row shows in it (the HTML page uses these
    too). The first two columns are text, the others numbers."""

    header: str
    cell: Callable[[Row], str]


def _shared(count: str, counted: Callable[[Any], int]) -> list[Column[Any]]:
    """The columns both levels have, up to the TTFB percentiles."""
    return [
        Column("backend", lambda r: r.backend or "(no backend)"),  # records of old versions
        Column("model", lambda r: r.model),
        Column(count, lambda r: str(counted(r))),
        Column("err%", lambda r: _num(r.error_rate * 100, ".1f")),
        Column("p50 ms", lambda r: _num(r.latency_p50_ms, ".0f")),
        Column("p95 ms", lambda r: _num(r.latency_p95_ms, ".0f")),
        Column("p99 ms", lambda r: _num(r.latency_p99_ms, ".0f")),
        Column("ttfb p50", lambda r: _num(r.ttfb_p50_ms, ".0f")),
        Column("ttfb p95", lambda r: _num(r.ttfb_p95_ms, ".0f")),
    ]


REQUEST_COLUMNS: list[Column[RequestStats]] = [
    *_shared("requests", lambda r: r.requests),
    Column("attempts", lambda r: str(r.attempts)),
    Column("failovers", lambda r: str(r.failovers)),
    Column("cold waits", lambda r: str(r.cold_waits)),
    Column("hedged", lambda r: str(r.hedged)),
    Column("backoff ms", lambda r: f"{r.backoff_ms:.0f}"),
    Column("cache hit", lambda r: _rate(r.cache_hit_rate)),
    Column("cost $", lambda r: f"{r.cost_usd:.4f}"),
    Column("baseline $", lambda r: f"{r.baseline_usd:.4f}"),
    Column("saving $", lambda r: f"{r.saving_usd:.4f}"),
]
ATTEMPT_COLUMNS: list[Column[GroupStats]] = [
    *_shared("calls", lambda r: r.calls),
    Column("cache hit", lambda r: _rate(r.cache_hit_rate)),
    Column("tokens in", lambda r: f"{r.tokens_in:,}"),
    Column("tokens out", lambda r: f"{r.tokens_out:,}"),
    Column("cost $", lambda r: f"{r.cost_usd:.4f}"),
]


def _table(
    title: str, columns: Sequence[Column[Row]], rows: Sequence[Row], total: Row
) -> list[str]:
    everything: list[Row] = list(rows)
    everything.append(total)
    table: list[list[str]] = [[c.header for c in columns]]
    table += [[c.cell(row) for c in columns] for row in everything]
    widths = [max(len(values[i]) for values in table) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.ljust(width) if i < 2 else value.rjust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [title, line(table[0]), rule, *(line(c) for c in table[1:-1]), rule, line(table[-1])]


def render_table(report: StatsReport) -> str:
    """Requests (what the client got), attempts (each try at a backend), then the saving."""
    header = f"latency records {report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    if not report.rows and not report.requests:
        return f"{header}\nno records in this window\n"
    out = [header, ""]
    if report.requests:
        out += _table(
            "requests (what the client got, across retries and failover)",
            REQUEST_COLUMNS,
            report.requests,
            report.requests_total,
        )
        out.append("")
    if report.rows:
        out += _table(
            "attempts (each try at a backend)", ATTEMPT_COLUMNS, report.rows, report.total
        )
        out.append("")
    savings = report.savings
    if savings.requests:
        share = savings.saving_usd / savings.baseline_usd if savings.baseline_usd else 0.0
        asked = ", ".join(f"{model} {n}" for model, n in savings.requested_models.items())
        guessed = [
            f"  - {model}: not in the price table; priced as {known}, its family's newest known"
            for model, known in savings.priced_as.items()
        ]
        out += [
            f"cost ${savings.cost_usd:.4f} against ${savings.baseline_usd:.4f} on Anthropic: "
            f"saved ${savings.saving_usd:.4f} ({share * 100:.0f}%) over {savings.requests} requests",
            f"projected monthly saving at this window's rate: ${savings.monthly_saving_usd:.2f}",
            f"requests asked for: {asked or '-'}",
            *(["priced by guess:", *guessed] if guessed else []),
            "assumed:",
            *(f"  - {text}" for text in savings.assumptions),
        ]
    elif report.rows:
        out.append("no request records in this window (older records are attempts only): no saving")
    if report.skipped:
        out.append(f"skipped {report.skipped} line(s) that are not latency records")
    return "\n".join(out) + "\n"


def report_json(report: StatsReport) -> str:
    data = report.to_json()
    data["skipped"] = report.skipped
    return json.dumps(data, indent=2)
