"""`ccrelay stats [--since 24h] [--source local|s3] [--json] [--html FILE]`.

Reads the latency records (local JSONL day files, or the S3 partitions of the window), streaming,
and prints two tables per (backend, model): requests (what the client got: error rate, total
latency and TTFB percentiles, attempts, failovers, backoff, cost against the Anthropic baseline)
and attempts (each try at a backend), then the saving, its monthly projection and what it
assumed. ``--html FILE`` also writes a self-contained page with charts over time.
Percentiles are linear interpolation (see `ccrelay.latency.stats`).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TextIO

from ccrelay.cli._common import EXIT_BACKEND, EXIT_OK, EXIT_USAGE, environ
from ccrelay.logsetup import configure_logging
from ccrelay_config.errors import ConfigError

if TYPE_CHECKING:
    from ccrelay_config.pricing import PriceTable
    from ccrelay_config.telemetry import TelemetrySettings

__all__ = ["parse_since", "register", "run", "run_stats"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SINCE = timedelta(days=3660)
"""Ten years: the records' partitions are dated, and a window must start after year 1."""
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")

Source = Literal["local", "s3"]


def parse_since(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w``, ``90s`` or a sum such as ``1h30m``."""
    value = text.strip().lower()
    parts = _PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 24h or 1h30m"
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be more than zero")
    if seconds > MAX_SINCE.total_seconds():
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: at most {MAX_SINCE.days}d (ten years) back"
        )
    return timedelta(seconds=seconds)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stats", help="latency, errors and cost per backend and model")
    parser.add_argument(
        "--since",
        type=parse_since,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="how far back to look: 30m, 24h, 7d, 1h30m (default: 24h)",
    )
    parser.add_argument(
        "--source",
        choices=("local", "s3"),
        default="local",
        help="local JSONL files (default) or the configured S3 bucket",
    )
    parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report with charts over time to FILE",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Entry point: where the records are comes from the config (`telemetry`)."""
    from ccrelay.backends.factory import load_client_config

    configure_logging(getattr(args, "log_level", None), getattr(args, "log_format", "human"))
    try:
        config = load_client_config(environ())
    except ConfigError as exc:
        print(f"ccrelay: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    telemetry: TelemetrySettings = getattr(args, "telemetry", None) or config.telemetry
    return run_stats(
        telemetry.resolved(environ()),
        args.since,
        args.source,
        args.as_json,
        sys.stdout,
        html=getattr(args, "html", None),
        prices=config.prices,
    )


def run_stats(
    settings: TelemetrySettings,
    since: timedelta,
    source: str,
    as_json: bool,
    out: TextIO,
    *,
    err: TextIO | None = None,
    now: datetime | None = None,
    html: str | None = None,
    prices: PriceTable | None = None,
) -> int:
    """Print the summary of the records of the last ``since``; returns the exit code.

    ``settings`` must be resolved (:meth:`TelemetrySettings.resolved`). Nothing is re-priced:
    each record carries the cost and baseline estimated when it was written; ``prices`` only
    says which requested models it does not know (their baseline was a guess).
    """
    from ccrelay.latency.reading import RecordLines, StatsSourceError, local_lines, s3_lines
    from ccrelay.latency.stats import StatsBuilder
    from ccrelay.latency.stats_text import render_table, report_json

    err = err or sys.stderr
    until = now or datetime.now(UTC)
    start = until - since
    if source == "s3":
        if settings.s3 is None:
            print("ccrelay: no S3 bucket configured (telemetry.s3)", file=err)
            return EXIT_USAGE
        lines = s3_lines(settings.s3, start, until)
        where = f"s3://{settings.s3.bucket}/{settings.s3.prefix.strip('/')}/"
    elif source == "local":
        if settings.jsonl_dir is None:
            print("ccrelay: telemetry settings not resolved (jsonl_dir unset)", file=err)
            return EXIT_USAGE
        lines = local_lines(settings.jsonl_dir, start, until)
        where = f"{settings.jsonl_dir} (local JSONL)"
    else:
        print(f"ccrelay: unknown source {source!r}: use local or s3", file=err)
        return EXIT_USAGE
    records = RecordLines(lines, start, until)
    builder = StatsBuilder(start, until, series=html is not None, prices=prices)
    try:
        for record in records:
            builder.add(record)
    except StatsSourceError as exc:
        print(f"ccrelay: error: {exc.message}", file=err)
        return EXIT_BACKEND
    print(f"ccrelay: read {records.read} records from {where}", file=err)
    report = builder.report(records.skipped)
    out.write(report_json(report) + "\n" if as_json else render_table(report))
    if html is not None:
        from ccrelay.latency.stats_html import render_html

        try:
            with open(html, "w", encoding="utf-8") as handle:
                handle.write(render_html(report))
        except OSError as exc:
            print(f"ccrelay: cannot write {html}: {exc.strerror or exc}", file=err)
            return EXIT_USAGE
        print(f"ccrelay: wrote the HTML report to {html}", file=err)
    return EXIT_OK
