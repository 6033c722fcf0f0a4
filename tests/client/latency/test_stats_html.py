"""`ccrelay stats --html FILE`, rendered by headless Chromium with the network closed."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccrelay.cli.stats import run_stats
from ccrelay.latency import JsonlSink, LatencyRecord
from ccrelay.latency.stats import compute_stats
from ccrelay.latency.stats_html import SERIES_COLOURS, render_html
from ccrelay_config.telemetry import TelemetrySettings
from tests.client.latency.helpers import make_record
from tests.client.latency.png_pixels import colour_counts
from tests.client.latency.test_latency_stats import NOW, generated

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def write_report(tmp_path: Path) -> Path:
    records = [r for r in generated(1500, seed=21) if r.backend in ("pod", "cerebras")]
    sink = JsonlSink(tmp_path / "records")
    for record in records:
        await sink.emit(record)
    await sink.aclose()
    page = tmp_path / "report.html"
    out, err = io.StringIO(), io.StringIO()
    settings = TelemetrySettings(jsonl_dir=tmp_path / "records")
    code = run_stats(
        settings,
        timedelta(days=2),
        "local",
        False,
        out,
        err=err,
        now=NOW,
        html=str(page),
    )
    assert code == 0, err.getvalue()
    assert f"wrote the HTML report to {page}" in err.getvalue()
    return page


async def test_the_page_is_self_contained(tmp_path: Path) -> None:
    html = (await write_report(tmp_path)).read_text()
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<script|<link", html, re.I)
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    for backend in ("pod", "cerebras"):
        assert f"<h2>{backend}</h2>" in html
    for title in (
        "latency of successful attempts",
        "error rate of attempts",
        "cache hit rate (where reported)",
        "cost against the Anthropic baseline",
    ):
        assert html.count(f"<h3>{title}") == 3, title  # every backend together, then each
    # the page opens with the charts of every backend together, before any table
    assert html.index("<h2>All backends</h2>") < html.index("<table") < html.index("<h2>pod</h2>")
    assert "Projected monthly saving" in html and "prompt caching as Claude Code uses it" in html


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (apt-get install chromium); .ci/run installs it"
)
async def test_chromium_draws_every_chart_offline(tmp_path: Path) -> None:
    page = await write_report(tmp_path)
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    result = await asyncio.to_thread(
        subprocess.run,
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            # no network at all: a page that needed one would miss it
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2300",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = await asyncio.to_thread(colour_counts, shot)
    drawn = {name: counts[colour] for name, colour in SERIES_COLOURS.items()}
    # every series is drawn: thousands of pixels of its own colour (legend swatches are 100)
    assert all(count > 400 for count in drawn.values()), str(drawn)


def page(records: list[LatencyRecord], since: datetime, until: datetime) -> str:
    return render_html(compute_stats(records, since=since, until=until, series=True))


def test_one_point_in_time_says_so_instead_of_drawing_an_empty_axis() -> None:
    """A day's window (hourly points) whose records all fall in one hour: one point. Its
    axis used to start and end at the same time."""
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    records = [make_record(n, start + timedelta(minutes=n)) for n in range(3)]
    html = page(records, start, start + timedelta(hours=24))
    assert "<svg" not in html
    assert html.count("a chart needs two") == 8  # four charts, all backends and cerebras
    two = [*records, make_record(9, start + timedelta(hours=5))]
    drawn = page(two, start, start + timedelta(hours=24))
    assert "a chart needs two" not in drawn and drawn.count("<svg") == 8


def test_records_with_no_backend_make_no_unnamed_block() -> None:
    """A usage error of an older version wrote a request record with an empty backend."""
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    records = [
        make_record(1, start),
        make_record(2, start + timedelta(minutes=40)),
        make_record(3, start, backend="", kind="request", outcome="unknown_backend"),
    ]
    html = page(records, start, start + timedelta(hours=1))
    assert "<h2></h2>" not in html
    assert "(no backend)" in html  # its row says what it is
