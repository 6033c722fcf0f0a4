from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccrelay.cli.stats import parse_since, register, run_stats
from ccrelay.latency import (
    GroupStats,
    JsonlSink,
    LatencyRecord,
    S3Sink,
    StatsSourceError,
    compute_stats,
    percentile,
    read_local_records,
    read_s3_records,
    render_table,
)
from ccrelay.latency.stats import RequestStats
from ccrelay.latency.stats_text import report_json
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import S3SinkSettings, TelemetrySettings
from tests.client.latency.helpers import MotoEndpoint, make_record, s3_settings
from tests.conftest import S3Bucket

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
BACKENDS = [
    ("cerebras", "cerebras", "qwen-3-coder-480b"),
    ("pod", "runpod", "qwen3-coder:30b"),
    ("anthropic", "anthropic", "claude-sonnet-4-5"),
]


def generated(count: int, seed: int, span: timedelta = timedelta(hours=48)) -> list[LatencyRecord]:
    """Random records (seeded) across three backends, ending at NOW: per request, its
    attempts, then its request record."""
    rng = random.Random(seed)
    prices = PriceTable()
    records = []
    for n in range(count):
        backend, backend_type, model = rng.choice(BACKENDS)
        ok = rng.random() > 0.1
        streamed = rng.random() > 0.5
        tokens_in, tokens_out = (rng.randint(100, 20_000), rng.randint(10, 2_000)) if ok else (0, 0)
        common = {
            "timestamp": NOW - span * rng.random(),
            "request_id": f"r{n}",
            "backend": backend,
            "backend_type": backend_type,
            "model": model,
            "outcome": "ok" if ok else rng.choice(["overloaded", "timeout"]),
            "status": 200 if ok else 503,
            "latency_ms": rng.lognormvariate(6.5, 0.6),
            "ttfb_ms": rng.uniform(50, 900) if streamed else None,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cache": rng.choice(["hit", "miss", "bypass"]) if backend_type == "runpod" else None,
            "cost_usd": prices.cost(model, tokens_in, tokens_out),
            "streamed": streamed,
        }
        records.append(LatencyRecord(**common, attempt=1))
        baseline = prices.baseline_cost(0, tokens_out, cache_write=tokens_in) if ok else 0.0
        if backend_type == "anthropic":
            baseline = common["cost_usd"]  # type: ignore[assignment]
        records.append(
            LatencyRecord(
                **{**common, "latency_ms": common["latency_ms"] + 1},  # type: ignore[arg-type]
                kind="request",
                requested_model="claude-sonnet-4-5",
                attempts=1,
                failovers=0,
                backoff_ms=0,
                baseline_usd=baseline,
            )
        )
    return records


# -- percentiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 3, 7, 100, 1001])
def test_percentile_matches_statistics_inclusive_quantiles(size: int) -> None:
    rng = random.Random(size)
    values = [rng.expovariate(1 / 300) for _ in range(size)]
    cuts = statistics.quantiles(values, n=100, method="inclusive")  # cut points p1..p99
    for q in (1, 5, 25, 50, 75, 95, 99):
        assert percentile(values, q) == pytest.approx(cuts[q - 1])
    assert percentile(values, 0) == min(values)
    assert percentile(values, 100) == max(values)


def test_percentile_edge_cases() -> None:
    assert percentile([42.0], 99) == 42.0
    assert percentile([1.0, 2.0], 50) == 1.5
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# -- summaries --------------------------------------------------------------------------------


def test_stats_match_an_independent_computation() -> None:
    records = generated(3000, seed=11)
    report = compute_stats(records, since=NOW - timedelta(days=2), until=NOW)
    assert [(r.backend, r.model) for r in report.rows] == sorted((b, m) for b, _, m in BACKENDS)
    assert [(r.backend, r.model) for r in report.requests] == [
        (r.backend, r.model) for r in report.rows
    ]
    for level, rows in (("attempt", report.rows), ("request", report.requests)):
        for row in rows:
            mine = [r for r in records if r.backend == row.backend and r.kind == level]
            ok = [r for r in mine if r.outcome == "ok"]
            latency = statistics.quantiles([r.latency_ms for r in ok], n=100, method="inclusive")
            ttfb = statistics.quantiles(
                [r.ttfb_ms for r in ok if r.ttfb_ms is not None], n=100, method="inclusive"
            )
            count = row.calls if isinstance(row, GroupStats) else row.requests
            assert count == len(mine)
            assert row.errors == len(mine) - len(ok)
            assert row.error_rate == pytest.approx((len(mine) - len(ok)) / len(mine))
            assert row.latency_p50_ms == pytest.approx(latency[49])
            assert row.latency_p95_ms == pytest.approx(latency[94])
            assert row.latency_p99_ms == pytest.approx(latency[98])
            assert row.ttfb_p50_ms == pytest.approx(ttfb[49])
            assert row.ttfb_p95_ms == pytest.approx(ttfb[94])
            assert row.tokens_in == sum(r.tokens_in for r in mine)
            assert row.cost_usd == pytest.approx(sum(r.cost_usd for r in mine))
            if row.backend == "pod":
                cached = [r for r in mine if r.cache is not None]
                hits = sum(1 for r in cached if r.cache == "hit")
                assert row.cache_hit_rate == pytest.approx(hits / len(cached))
                assert row.cost_usd == 0
            if isinstance(row, RequestStats):
                baseline = sum(r.baseline_usd or 0 for r in mine)
                assert row.baseline_usd == pytest.approx(baseline)
                assert row.saving_usd == pytest.approx(baseline - row.cost_usd)
                assert (row.saving_usd == 0) is (row.backend == "anthropic")
    requests = [r for r in records if r.kind == "request"]
    assert report.total.calls == len(records) - len(requests)
    assert report.requests_total.requests == len(requests)
    saving = sum((r.baseline_usd or 0) - r.cost_usd for r in requests)
    assert report.savings.saving_usd == pytest.approx(saving)
    assert report.savings.monthly_saving_usd == pytest.approx(saving / 2 * 30)  # a 2-day window
    assert report.savings.requested_models == {"claude-sonnet-4-5": len(requests)}


def test_a_group_of_errors_only_has_no_percentiles() -> None:
    records = [make_record(n, outcome="connect_failed", status=None) for n in range(3)]
    report = compute_stats(records, since=NOW, until=NOW)
    [row] = report.rows
    assert (row.error_rate, row.latency_p50_ms, row.ttfb_p50_ms) == (1.0, None, None)
    assert "100.0" in render_table(report)


def test_table_rendering() -> None:
    records = generated(200, seed=5)
    report = compute_stats(records, since=NOW - timedelta(days=2), until=NOW)
    lines = render_table(report).splitlines()
    assert lines[0] == "latency records 2025-03-01 12:00 .. 2025-03-03 12:00 UTC"
    assert lines[2].startswith("requests (what the client got")
    assert lines[3].split()[:4] == ["backend", "model", "requests", "err%"]
    assert "ttfb p95" in lines[3]
    assert [line.split()[0] for line in lines[5:8]] == ["anthropic", "cerebras", "pod"]
    assert lines[9].startswith("total") and f"{report.requests_total.requests}" in lines[9]
    attempts = lines.index("attempts (each try at a backend)")
    assert lines[attempts + 1].split()[:4] == ["backend", "model", "calls", "err%"]
    assert lines[attempts + 7].startswith("total")
    text = "\n".join(lines)
    assert "projected monthly saving at this window's rate" in text
    assert "prompt caching as Claude Code uses it" in text  # the assumptions are said
    empty = compute_stats([], since=NOW, until=NOW)
    assert "no records in this window" in render_table(empty)


# -- reading back -----------------------------------------------------------------------------


async def test_local_records_for_a_window(tmp_path: Path) -> None:
    records = generated(500, seed=7, span=timedelta(days=4))
    sink = JsonlSink(tmp_path)
    for record in records:
        await sink.emit(record)
    await sink.aclose()
    with (tmp_path / f"latency-{NOW:%Y-%m-%d}.jsonl").open("a") as day_file:
        day_file.write("not json\n{}\n")  # damaged lines are skipped
    since = NOW - timedelta(hours=30)
    found = read_local_records(tmp_path, since, NOW)
    expected = {(r.kind, r.request_id) for r in records if r.timestamp >= since}
    assert {(r.kind, r.request_id) for r in found} == expected
    assert len(found) == len(expected)


async def test_s3_records_for_a_window(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    settings = s3_settings(
        s3_bucket.name, tmp_path / "spool", moto_endpoint.url, batch_max_records=50
    )
    records = generated(400, seed=8, span=timedelta(days=3))
    sink = S3Sink(settings)
    for record in records:
        await sink.emit(record)
    await sink.aclose(timeout=10)
    # An object outside the layout is ignored.
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="team/latency/README", Body=b"x")
    since = NOW - timedelta(hours=25, minutes=30)
    # Synchronous (the CLI has no loop): off the loop that serves the loopback S3.
    found = await asyncio.to_thread(read_s3_records, settings, since, NOW)
    expected = {(r.kind, r.request_id) for r in records if r.timestamp >= since}
    assert sorted((r.kind, r.request_id) for r in found) == sorted(expected)

    out = io.StringIO()
    code = await asyncio.to_thread(
        run_stats,
        TelemetrySettings(jsonl_dir=tmp_path, s3=settings),
        timedelta(hours=25, minutes=30),
        "s3",
        True,
        out,
        now=NOW,
    )
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["total"]["calls"] + report["requests_total"]["requests"] == len(expected)


def test_s3_unreachable_is_a_stats_error(tmp_path: Path, refused_url: str) -> None:
    settings = S3SinkSettings(
        bucket="my-bucket", endpoint_url=refused_url, region="us-east-1", connect_timeout_s=1
    )
    with pytest.raises(StatsSourceError, match="my-bucket"):
        read_s3_records(settings, NOW - timedelta(hours=1), NOW, client=None)


# -- the command ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize(
    "text", ["", "24", "h", "3 days", "-1h", "0m", "1h 30m", "24x", "1000000d", "3661d"]
)
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_since(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ccrelay")
    register(top.add_subparsers(dest="command"))
    return top


def test_command_line_options() -> None:
    args = parser().parse_args(["stats"])
    assert (args.since, args.source, args.as_json) == (timedelta(hours=24), "local", False)
    args = parser().parse_args(["stats", "--since", "7d", "--source", "s3", "--json"])
    assert (args.since, args.source, args.as_json) == (timedelta(days=7), "s3", True)
    with pytest.raises(SystemExit):
        parser().parse_args(["stats", "--source", "ftp"])


async def test_command_reads_the_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # conftest's clean_environment points CCRELAY_STATE_DIR at tmp_path / "state".
    records = [make_record(n, datetime.now(UTC) - timedelta(minutes=n)) for n in range(5)]
    sink = JsonlSink(tmp_path / "state")
    for record in records:
        await sink.emit(record)
    await sink.aclose()
    args = parser().parse_args(["stats", "--since", "1h", "--json"])
    assert args.run(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["total"]["calls"] == 5
    assert payload["rows"][0]["backend"] == "cerebras"


def test_command_errors(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    settings = TelemetrySettings(jsonl_dir=tmp_path)
    assert run_stats(settings, timedelta(hours=1), "s3", False, out, err=err) == 2
    assert "no S3 bucket configured" in err.getvalue()
    unresolved = TelemetrySettings()
    assert run_stats(unresolved, timedelta(hours=1), "local", False, out, err=err) == 2
    assert run_stats(settings, timedelta(hours=1), "local", False, out) == 0
    assert "no records in this window" in out.getvalue()


def test_a_window_past_ten_years_is_a_usage_error(tmp_path: Path) -> None:
    """Before: an OverflowError traceback from `now - 1000000 days`."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ccrelay.cli", "stats", "--since", "1000000d"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CCRELAY_STATE_DIR": str(tmp_path)},
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "at most 3660d (ten years) back" in result.stderr
    assert "Traceback" not in result.stderr


# -- issue 24 ----------------------------------------------------------------------------------


def test_a_request_that_failed_over_is_a_failure_of_every_backend_it_left() -> None:
    """It was counted only under the backend that answered: cerebras, refusing every
    request, looked healthy at the request level."""
    start = NOW - timedelta(hours=1)
    records = [
        make_record(1, start, outcome="connect_failed", status=None),
        make_record(1, start, attempt=2, outcome="connect_failed", status=None),
        make_record(
            1, start, backend="anthropic", backend_type="anthropic", model="claude-opus-4-8"
        ),
        make_record(
            1,
            start,
            kind="request",
            backend="anthropic",
            backend_type="anthropic",
            model="claude-opus-4-8",
            attempt=None,
            attempts=3,
            failovers=1,
        ),
        make_record(2, start),  # a plain cerebras success
        make_record(2, start, kind="request", attempt=None, attempts=1, failovers=0),
    ]
    report = compute_stats(records, since=start, until=NOW)
    rows = {(r.backend, r.requests, r.errors, r.attempts) for r in report.requests}
    assert rows == {("cerebras", 2, 1, 3), ("anthropic", 1, 0, 3)}
    assert report.requests_total.requests == 2  # each client request counted once
    assert report.requests_total.errors == 0


def test_stats_says_which_models_it_priced_by_guess() -> None:
    start = NOW - timedelta(hours=1)
    records = [
        make_record(n, start, kind="request", attempt=None, attempts=1, requested_model=asked)
        for n, asked in enumerate(["claude-opus-6", "claude-opus-4-8", "qwen3-coder"])
    ]
    report = compute_stats(records, since=start, until=NOW, prices=PriceTable())
    assert report.savings.priced_as == {"claude-opus-6": "claude-opus-5-5"}
    text = render_table(report)
    assert "claude-opus-6: not in the price table; priced as claude-opus-5-5" in text
    assert report_json(report) and "priced_as" in report.to_json()["savings"]
