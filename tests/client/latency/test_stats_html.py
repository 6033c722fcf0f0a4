"""`ccrelay stats --html FILE`, rendered by headless Chromium with the network closed."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from ccrelay.cli.stats import run_stats
from ccrelay.latency import JsonlSink
from ccrelay.latency.stats_html import SERIES_COLOURS
from ccrelay_config.telemetry import TelemetrySettings
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
        assert html.count(f"<h3>{title}") == 2, title
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
