"""`ccrelay stats` as plain-text tables (requests, then attempts, then the money) or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from ccrelay.latency.stats import GroupStats, RequestStats, StatsReport

__all__ = ["render_table", "report_json"]

Row = TypeVar("Row", GroupStats, RequestStats)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


_REQUEST_COLUMNS = (
    "backend",
    "model",
    "requests",
    "err%",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "ttfb p50",
    "ttfb p95",
    "attempts",
    "failovers",
    "backoff ms",
    "cache hit",
    "cost $",
    "baseline $",
    "saving $",
)


def _request_cells(row: RequestStats) -> list[str]:
    return [
        row.backend,
        row.model,
        str(row.requests),
        _num(row.error_rate * 100, ".1f"),
        _num(row.latency_p50_ms, ".0f"),
        _num(row.latency_p95_ms, ".0f"),
        _num(row.latency_p99_ms, ".0f"),
        _num(row.ttfb_p50_ms, ".0f"),
        _num(row.ttfb_p95_ms, ".0f"),
        str(row.attempts),
        str(row.failovers),
        f"{row.backoff_ms:.0f}",
        _rate(row.cache_hit_rate),
        f"{row.cost_usd:.4f}",
        f"{row.baseline_usd:.4f}",
        f"{row.saving_usd:.4f}",
    ]


_ATTEMPT_COLUMNS = (
    "backend",
    "model",
    "calls",
    "err%",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "ttfb p50",
    "ttfb p95",
    "cache hit",
    "tokens in",
    "tokens out",
    "cost $",
)


def _attempt_cells(row: GroupStats) -> list[str]:
    return [
        row.backend,
        row.model,
        str(row.calls),
        _num(row.error_rate * 100, ".1f"),
        _num(row.latency_p50_ms, ".0f"),
        _num(row.latency_p95_ms, ".0f"),
        _num(row.latency_p99_ms, ".0f"),
        _num(row.ttfb_p50_ms, ".0f"),
        _num(row.ttfb_p95_ms, ".0f"),
        _rate(row.cache_hit_rate),
        f"{row.tokens_in:,}",
        f"{row.tokens_out:,}",
        f"{row.cost_usd:.4f}",
    ]


def _table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    total: Row,
    cells: Callable[[Row], list[str]],
) -> list[str]:
    table: list[list[str]] = [list(columns), *(cells(row) for row in rows), cells(total)]
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
            _REQUEST_COLUMNS,
            report.requests,
            report.requests_total,
            _request_cells,
        )
        out.append("")
    if report.rows:
        out += _table(
            "attempts (each try at a backend)",
            _ATTEMPT_COLUMNS,
            report.rows,
            report.total,
            _attempt_cells,
        )
        out.append("")
    savings = report.savings
    if savings.requests:
        share = savings.saving_usd / savings.baseline_usd if savings.baseline_usd else 0.0
        asked = ", ".join(f"{model} {n}" for model, n in savings.requested_models.items())
        out += [
            f"cost ${savings.cost_usd:.4f} against ${savings.baseline_usd:.4f} on Anthropic: "
            f"saved ${savings.saving_usd:.4f} ({share * 100:.0f}%) over {savings.requests} requests",
            f"projected monthly saving at this window's rate: ${savings.monthly_saving_usd:.2f}",
            f"requests asked for: {asked or '-'}",
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
