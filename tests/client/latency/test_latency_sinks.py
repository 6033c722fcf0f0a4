from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ccrelay.errors import UpstreamOverloaded
from ccrelay.latency import (
    JsonlSink,
    LatencyRecord,
    LatencyRecorder,
    LogSink,
    MultiSink,
    RecordSink,
    S3Sink,
    build_sink,
)
from ccrelay.latency.observer import Attempt
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import S3SinkSettings, TelemetrySettings, default_state_dir
from tests.client.latency.helpers import make_record, names_in


class ListSink:
    """A sink that keeps what it gets (a test's own sink, not a stand-in for ours)."""

    def __init__(self) -> None:
        self.records: list[LatencyRecord] = []
        self.closed_with: float | None = None

    async def start(self) -> None:
        return None

    async def emit(self, record: LatencyRecord) -> None:
        self.emit_nowait(record)

    def emit_nowait(self, record: LatencyRecord) -> None:
        self.records.append(record)

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        self.closed_with = timeout


class BrokenSink(ListSink):
    def emit_nowait(self, record: LatencyRecord) -> None:
        raise RuntimeError("disk on fire")

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        raise RuntimeError("still on fire")


def read_jsonl(path: Path) -> list[LatencyRecord]:
    return [LatencyRecord.from_json_line(line) for line in path.read_text().splitlines()]


# -- JSONL ------------------------------------------------------------------------------------


async def test_jsonl_one_file_per_utc_day(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "state", flush_interval_s=0.01)
    late = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
    records = [make_record(n, late + timedelta(seconds=n)) for n in range(4)]
    for record in records:
        await sink.emit(record)
    await sink.aclose()
    files = names_in(tmp_path / "state")
    assert files == ["latency-2025-03-01.jsonl", "latency-2025-03-02.jsonl"]
    assert read_jsonl(tmp_path / "state" / files[0]) == records[:1]
    assert read_jsonl(tmp_path / "state" / files[1]) == records[1:]
    assert ((tmp_path / "state" / files[0]).stat().st_mode & 0o777) == 0o600


async def test_jsonl_appends_across_sinks_and_flushes_in_the_background(tmp_path: Path) -> None:
    first = JsonlSink(tmp_path, flush_interval_s=0.01)
    for n in range(3):
        await first.emit(make_record(n))
    path = tmp_path / "latency-2025-03-01.jsonl"
    for _ in range(200):  # written by the background task, before any close
        if path.exists() and len(path.read_text().splitlines()) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(read_jsonl(path)) == 3
    second = JsonlSink(tmp_path, flush_max_records=2)
    for n in range(3, 8):
        await second.emit(make_record(n))
    await asyncio.gather(first.aclose(), second.aclose())
    assert [r.request_id for r in read_jsonl(path)] == [f"req-{n:05d}" for n in range(8)]


async def test_jsonl_emit_after_close_is_dropped_not_raised(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path)
    await sink.aclose()
    await sink.emit(make_record(1))
    assert sink.dropped == 1
    assert names_in(tmp_path) == []


# -- fan-out and the recorder -----------------------------------------------------------------


async def test_multisink_isolates_a_failing_sink(caplog: pytest.LogCaptureFixture) -> None:
    good = ListSink()
    multi = MultiSink([BrokenSink(), good])
    await multi.emit(make_record(1))
    multi.emit_nowait(make_record(2))
    await multi.aclose(2.5)
    assert [r.request_id for r in good.records] == ["req-00001", "req-00002"]
    assert good.closed_with == 2.5
    assert "BrokenSink failed" in caplog.text


def test_every_sink_satisfies_the_protocol(tmp_path: Path) -> None:
    s3 = S3Sink(S3SinkSettings(bucket="abc", spool_dir=tmp_path))
    for sink in (LogSink(), JsonlSink(tmp_path), MultiSink([]), s3, ListSink()):
        assert isinstance(sink, RecordSink)


async def test_recorder_prices_and_emits() -> None:
    sink = ListSink()
    now = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    recorder = LatencyRecorder(sink, PriceTable(), now=lambda: now)
    record = recorder.record(
        request_id="r1",
        backend="cerebras",
        backend_type="cerebras",
        model="qwen-3-coder-480b",
        outcome="ok",
        attempt=1,
        latency_ms=812.0,
        status=200,
        ttfb_ms=95.0,
        tokens_in=1_000_000,
        tokens_out=500_000,
        streamed=True,
    )
    assert record is not None
    assert sink.records == [record]
    assert record.cost_usd == pytest.approx(3.0)
    assert record.timestamp == now


async def test_recorder_takes_an_exception_as_outcome() -> None:
    sink = ListSink()
    recorder = LatencyRecorder(sink, PriceTable())
    error = UpstreamOverloaded("cerebras", "busy", upstream_status=503, retry_after=2)
    record = recorder.record(
        request_id="r2",
        backend="cerebras",
        backend_type="cerebras",
        model="qwen-3-coder-480b",
        outcome=error,
        attempt=2,
        latency_ms=40.0,
    )
    assert record is not None
    assert (record.outcome, record.status, record.attempt) == ("UpstreamOverloaded", 503, 2)


def pod_attempt(**changes: Any) -> Attempt:
    """A streamed, successful attempt on the self-hosted `pod` backend."""
    fields: dict[str, Any] = {
        "request_id": "r3",
        "backend": "pod",
        "backend_type": "runpod",
        "model": "qwen3-coder:30b",
        "attempt": 1,
        "outcome": "ok",
        "status": 200,
        "latency_ms": 1000.0,
        "streamed": True,
    }
    return Attempt(**{**fields, **changes})


async def test_recorder_is_the_backends_attempt_observer() -> None:
    sink = ListSink()
    now = datetime(2025, 3, 1, 8, 0, 1, tzinfo=UTC)
    recorder = LatencyRecorder(sink, PriceTable(), now=lambda: now)
    recorder.on_attempt(pod_attempt(ttfb_ms=300.0, tokens_in=50, tokens_out=None, cache="hit"))
    assert sink.records == [], "made after the reply, on the loop's next turn"
    await asyncio.sleep(0)
    [record] = sink.records
    assert record.timestamp == now - timedelta(seconds=1)  # when the attempt started
    assert (record.tokens_in, record.tokens_out, record.cache) == (50, 0, "hit")
    assert record.cost_usd == 0.0


async def test_recorder_keeps_a_bypass_verdict() -> None:
    sink = ListSink()
    recorder = LatencyRecorder(sink, PriceTable())
    recorder.on_attempt(pod_attempt(request_id="r5", cache="bypass"))
    recorder.on_attempt(pod_attempt(request_id="r6", cache="stale"))
    await asyncio.sleep(0)
    assert [r.cache for r in sink.records] == ["bypass", None]


async def test_recorder_never_raises_on_bad_values(caplog: pytest.LogCaptureFixture) -> None:
    sink = ListSink()
    recorder = LatencyRecorder(sink, PriceTable())
    result = recorder.record(
        request_id="r4",
        backend="cerebras",
        backend_type="cerebras",
        model="m",
        outcome="ok",
        attempt=0,
        latency_ms=-3,
    )
    assert result is None
    assert sink.records == []
    assert "invalid attempt, latency_ms" in caplog.text


async def test_recorder_from_settings_writes_log_and_jsonl(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.latency")
    settings = TelemetrySettings(log_format="json").resolved({"CCRELAY_STATE_DIR": str(tmp_path)})
    recorder = LatencyRecorder.from_settings(settings, PriceTable())
    await recorder.start()
    recorder.record(
        request_id="r5",
        backend="anthropic",
        backend_type="anthropic",
        model="claude-sonnet-4-5",
        outcome="ok",
        attempt=1,
        latency_ms=900,
        tokens_in=100,
        tokens_out=10,
    )
    await recorder.aclose(5)
    [day_file] = names_in(tmp_path, "latency-*.jsonl")
    [record] = read_jsonl(tmp_path / day_file)
    assert record.cost_usd == pytest.approx((100 * 3 + 10 * 15) / 1e6)
    logged = [r for r in caplog.records if r.name == "ccrelay.latency"]
    assert json.loads(logged[0].getMessage())["request_id"] == "r5"


# -- settings ---------------------------------------------------------------------------------


def test_state_dir_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert default_state_dir({}, home) == home / ".local/state/ccrelay"
    assert default_state_dir({"XDG_STATE_HOME": "/x"}, home) == Path("/x/ccrelay")
    both = {"XDG_STATE_HOME": "/x", "CCRELAY_STATE_DIR": "/c"}
    assert default_state_dir(both, home) == Path("/c")


def test_resolved_fills_paths_and_keeps_explicit_ones(tmp_path: Path) -> None:
    env = {"CCRELAY_STATE_DIR": str(tmp_path)}
    plain = TelemetrySettings.model_validate({"s3": {"bucket": "my-bucket"}}).resolved(env)
    assert plain.jsonl_dir == tmp_path
    assert plain.s3 is not None and plain.s3.spool_dir == tmp_path / "s3-spool"
    explicit = TelemetrySettings(jsonl_dir=tmp_path / "j").resolved(env)
    assert explicit.jsonl_dir == tmp_path / "j" and explicit.s3 is None
    assert TelemetrySettings().jsonl_dir is None  # nothing read until resolved


def test_settings_forbid_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        TelemetrySettings.model_validate({"s3": {"bucket": "my-bucket", "bukket": "x"}})
    with pytest.raises(ValueError, match="log_format"):
        TelemetrySettings.model_validate({"log_format": "xml"})


def test_build_sink_follows_settings(tmp_path: Path) -> None:
    settings = TelemetrySettings(
        jsonl_enabled=False, s3=S3SinkSettings(bucket="my-bucket")
    ).resolved({"CCRELAY_STATE_DIR": str(tmp_path)})
    sink = build_sink(settings)
    assert isinstance(sink, MultiSink)
    assert [type(s).__name__ for s in sink.sinks] == ["LogSink", "S3Sink"]
    with pytest.raises(ValueError, match="resolve"):
        build_sink(TelemetrySettings())
