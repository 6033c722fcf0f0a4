"""Read latency records back (local JSONL or S3) and summarise them per backend and model.

Percentiles use linear interpolation between closest ranks: for sorted values ``x[0..n-1]`` the
q-th percentile is at position ``(n - 1) * q / 100``, interpolated between its two neighbours.
This is numpy's default (``method="linear"``), Hyndman & Fan's type 7, and what
``statistics.quantiles(data, n=100, method="inclusive")`` returns for its cut points.

What each column means:

- ``calls``: attempts (a retried request counts once per attempt); ``error rate``: the share of
  attempts whose outcome is not ``ok``.
- latency and TTFB percentiles: over successful attempts only (TTFB: streamed ones), so a burst
  of instant connection errors does not flatter them, nor timeouts inflate them.
- ``cache hit``: hits among attempts whose backend reported a verdict (hit, miss or bypass).
- ``cost``: the sum of the records' estimated ``cost_usd``; ``saving``: what the same tokens would
  have cost on the baseline Anthropic model, minus ``cost``, for non-Anthropic backends (an
  Anthropic pass-through saves nothing by definition).

Reading is synchronous (the CLI has no event loop); async code calls it in a thread.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ccrelay.errors import CcrelayError
from ccrelay.latency._layout import (
    day_prefix,
    days_between,
    decode_lines,
    jsonl_name,
    key_partition,
    partition_start,
)
from ccrelay.latency.record import LatencyRecord
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import S3SinkSettings

__all__ = [
    "GroupStats",
    "StatsReport",
    "StatsSourceError",
    "compute_stats",
    "percentile",
    "read_local_records",
    "read_s3_records",
    "render_table",
]

_log = logging.getLogger("ccrelay.telemetry")
_HOUR_S = 3600


class StatsSourceError(CcrelayError):
    """The records could not be read (S3 unreachable, access denied, ...)."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation (see module doc)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    data = sorted(values)
    position = (len(data) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


# -- reading ---------------------------------------------------------------------------------------


def _parse(
    lines: Iterable[bytes], since: datetime, until: datetime
) -> tuple[list[LatencyRecord], int]:
    records: list[LatencyRecord] = []
    skipped = 0
    for line in lines:
        try:
            record = LatencyRecord.from_json_line(line)
        except ValidationError:
            skipped += 1
            continue
        if since <= record.timestamp <= until:
            records.append(record)
    return records, skipped


def read_local_records(directory: Path, since: datetime, until: datetime) -> list[LatencyRecord]:
    """Records from ``latency-YYYY-MM-DD.jsonl`` day files with ``since <= timestamp <= until``."""
    records: list[LatencyRecord] = []
    skipped = 0
    for day in days_between(since, until):
        path = directory / jsonl_name(day)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StatsSourceError(f"cannot read {path}: {exc}") from exc
        found, bad = _parse(decode_lines(data, gzipped=False), since, until)
        records.extend(found)
        skipped += bad
    if skipped:
        _log.warning("skipped %d unreadable latency record line(s) in %s", skipped, directory)
    return records


def read_s3_records(
    settings: S3SinkSettings, since: datetime, until: datetime, *, client: Any = None
) -> list[LatencyRecord]:
    """Records from the objects under ``settings.prefix`` in the hourly partitions of the window."""
    if client is None:
        from ccrelay.latency.s3 import make_s3_client

        client = make_s3_client(settings, max_attempts=3)
    records: list[LatencyRecord] = []
    skipped = 0
    first_hour = since.timestamp() - _HOUR_S
    try:
        paginator = client.get_paginator("list_objects_v2")
        for day in days_between(since, until):
            pages = paginator.paginate(
                Bucket=settings.bucket, Prefix=day_prefix(settings.prefix, day)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    partition = key_partition(item["Key"])
                    if partition is None:
                        continue
                    start = partition_start(partition).timestamp()
                    if start <= first_hour or start > until.timestamp():
                        continue
                    body = client.get_object(Bucket=settings.bucket, Key=item["Key"])["Body"]
                    found, bad = _parse(decode_lines(body.read(), gzipped=True), since, until)
                    records.extend(found)
                    skipped += bad
    except (BotoCoreError, ClientError) as exc:
        raise StatsSourceError(
            f"cannot read latency records from s3://{settings.bucket}: {exc}"
        ) from exc
    if skipped:
        _log.warning("skipped %d unreadable latency record line(s) on S3", skipped)
    return records


# -- summarising -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupStats:
    """The summary of one (backend, model); latencies in milliseconds, money in USD."""

    backend: str
    model: str
    calls: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttfb_p50_ms: float | None
    cache_hit_rate: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    saving_usd: float


@dataclass(frozen=True, slots=True)
class StatsReport:
    since: datetime
    until: datetime
    rows: list[GroupStats]
    total: GroupStats

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": [asdict(row) for row in self.rows],
            "total": asdict(self.total),
        }


def _summarise(
    backend: str, model: str, records: Sequence[LatencyRecord], prices: PriceTable
) -> GroupStats:
    ok = [r for r in records if r.ok]
    latencies = [r.latency_ms for r in ok]
    ttfbs = [r.ttfb_ms for r in ok if r.ttfb_ms is not None]
    hits = sum(1 for r in records if r.cache == "hit")
    reported = sum(1 for r in records if r.cache is not None)
    cost = sum(r.cost_usd for r in records)
    saving = sum(
        prices.baseline_cost(r.tokens_in, r.tokens_out) - r.cost_usd
        for r in records
        if r.backend_type != "anthropic"
    )
    errors = len(records) - len(ok)
    return GroupStats(
        backend=backend,
        model=model,
        calls=len(records),
        errors=errors,
        error_rate=errors / len(records) if records else 0.0,
        latency_p50_ms=percentile(latencies, 50) if latencies else None,
        latency_p95_ms=percentile(latencies, 95) if latencies else None,
        latency_p99_ms=percentile(latencies, 99) if latencies else None,
        ttfb_p50_ms=percentile(ttfbs, 50) if ttfbs else None,
        cache_hit_rate=hits / reported if reported else None,
        tokens_in=sum(r.tokens_in for r in records),
        tokens_out=sum(r.tokens_out for r in records),
        cost_usd=cost,
        saving_usd=saving,
    )


def compute_stats(
    records: Iterable[LatencyRecord], prices: PriceTable, *, since: datetime, until: datetime
) -> StatsReport:
    """Per (backend, model) summaries, sorted by backend then model, plus a total row."""
    groups: dict[tuple[str, str], list[LatencyRecord]] = {}
    everything: list[LatencyRecord] = []
    for record in records:
        groups.setdefault((record.backend, record.model), []).append(record)
        everything.append(record)
    rows = [_summarise(b, m, group, prices) for (b, m), group in sorted(groups.items())]
    return StatsReport(since, until, rows, _summarise("total", "", everything, prices))


# -- rendering -------------------------------------------------------------------------------------

_COLUMNS = (
    "backend",
    "model",
    "calls",
    "err%",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "ttfb p50",
    "cache hit",
    "tokens in",
    "tokens out",
    "cost $",
    "saving $",
)
_LEFT = 2  # the first two columns are text, the rest numbers


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _cells(row: GroupStats) -> list[str]:
    return [
        row.backend,
        row.model,
        str(row.calls),
        _num(row.error_rate * 100, ".1f"),
        _num(row.latency_p50_ms, ".0f"),
        _num(row.latency_p95_ms, ".0f"),
        _num(row.latency_p99_ms, ".0f"),
        _num(row.ttfb_p50_ms, ".0f"),
        "-" if row.cache_hit_rate is None else f"{row.cache_hit_rate * 100:.0f}%",
        f"{row.tokens_in:,}",
        f"{row.tokens_out:,}",
        f"{row.cost_usd:.4f}",
        f"{row.saving_usd:.4f}",
    ]


def render_table(report: StatsReport) -> str:
    """A plain-text table, one line per (backend, model), then the total."""
    header = f"latency records {report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    if not report.rows:
        return f"{header}\nno records in this window\n"
    table = [list(_COLUMNS), *(_cells(row) for row in report.rows), _cells(report.total)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < _LEFT else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [line(cells) for cells in table[1:-1]]
    return "\n".join([header, line(table[0]), rule, *body, rule, line(table[-1])]) + "\n"


def report_json(report: StatsReport) -> str:
    return json.dumps(report.to_json(), indent=2)
