from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr, ValidationError

from ccrelay.latency import LatencyRecord, LogSink, format_human
from ccrelay_config.telemetry import S3SinkSettings
from tests.client.latency.helpers import make_record

FIELDS = {
    "timestamp",
    "kind",
    "request_id",
    "session",
    "request_class",
    "hedged",
    "cold_wait_ms",
    "repaired_tool_calls",
    "backend",
    "backend_type",
    "model",
    "requested_model",
    "route",
    "outcome",
    "status",
    "attempt",
    "attempts",
    "failovers",
    "backoff_ms",
    "latency_ms",
    "ttfb_ms",
    "streamed",
    "tokens_in",
    "tokens_out",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache",
    "cost_usd",
    "baseline_usd",
}


def test_json_line_round_trip_keeps_every_field() -> None:
    record = make_record(7, ttfb_ms=95.5, cache="hit", streamed=True)
    line = record.to_json_line()
    assert "\n" not in line
    assert set(json.loads(line)) == FIELDS
    assert LatencyRecord.from_json_line(line) == record
    assert LatencyRecord.from_json_line(line.encode()) == record


def test_timestamp_is_stored_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    record = make_record(1, datetime(2025, 6, 1, 2, 30, tzinfo=paris))
    assert record.timestamp == datetime(2025, 6, 1, 0, 30, tzinfo=UTC)
    assert json.loads(record.to_json_line())["timestamp"] == "2025-06-01T00:30:00.000000Z"
    with_micros = make_record(1, datetime(2025, 6, 1, 0, 30, 0, 1000, tzinfo=UTC))
    assert json.loads(with_micros.to_json_line())["timestamp"] == "2025-06-01T00:30:00.001000Z"
    with pytest.raises(ValidationError):
        make_record(1, datetime(2025, 6, 1))  # naive: refused


def test_a_record_has_no_room_for_prompts_or_secrets() -> None:
    for extra in ({"prompt": "hello"}, {"api_key": "sk-secret"}, {"messages": []}):
        with pytest.raises(ValidationError):
            make_record(1, **extra)
    line = make_record(1).to_json_line()
    assert set(json.loads(line)) == FIELDS
    with pytest.raises(ValidationError):
        LatencyRecord.from_json_line(line[:-1] + ', "prompt": "x"}')


def test_values_are_validated() -> None:
    for bad in ({"attempt": 0}, {"latency_ms": -1}, {"tokens_in": -5}, {"cache": "warm"}):
        with pytest.raises(ValidationError):
            make_record(1, **bad)
    record = make_record(1)
    with pytest.raises(ValidationError):
        record.outcome = "changed"  # type: ignore[misc]


def test_human_log_line_format() -> None:
    record = make_record(
        0,
        latency_ms=812.4,
        ttfb_ms=95.2,
        tokens_in=1200,
        tokens_out=340,
        cost_usd=0.0012,
        request_id="req_1",
    )
    assert format_human(record) == (
        "backend=cerebras model=qwen-3-coder-480b outcome=ok status=200 attempt=1"
        " latency_ms=812 ttfb_ms=95 tokens=1200/340 cache=- cost=$0.0012 request_id=req_1"
    )
    failed = make_record(0, outcome="BackendConnectError", status=None, cache="miss")
    assert "outcome=BackendConnectError status=- " in format_human(failed)
    assert "ttfb_ms=- " in format_human(failed)
    assert "cache=miss " in format_human(failed)


async def test_log_sink_writes_one_line_per_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.latency")
    human, as_json = LogSink("human"), LogSink("json")
    record = make_record(3)
    await human.emit(record)
    await as_json.emit(record)
    await human.aclose()
    lines = [r for r in caplog.records if r.name == "ccrelay.latency"]
    assert [r.getMessage() for r in lines] == [format_human(record), record.to_json_line()]
    assert lines[0].fields()["request_id"] == "req-00003"  # type: ignore[attr-defined]


def test_s3_credentials_never_show() -> None:
    settings = S3SinkSettings(
        bucket="my-bucket",
        access_key_id=SecretStr("AKIASECRETVALUE"),
        secret_access_key=SecretStr("very-secret-key"),
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "AKIASECRETVALUE" not in text
        assert "very-secret-key" not in text


def test_the_log_sink_leaves_request_records_to_the_access_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.latency")
    request = make_record(1, kind="request", attempt=None, attempts=2, failovers=1)
    LogSink().emit_nowait(request)
    assert caplog.records == []
    LogSink(requests=True).emit_nowait(request)
    [line] = caplog.records
    assert (
        line.getMessage().startswith("request backend=")
        and "attempts=2 failovers=1" in line.getMessage()
    )


@pytest.mark.parametrize("micros", [0, 1, 999_999])
def test_the_fast_json_line_is_pydantics_line(micros: int) -> None:
    record = make_record(
        3,
        datetime(2025, 6, 1, 0, 30, 0, micros, tzinfo=UTC),
        kind="request",
        attempt=None,
        attempts=3,
        baseline_usd=0.123456789,
        cost_usd=1e-7,
    )
    assert json.loads(record.to_json_line()) == json.loads(record.model_dump_json())
    assert record.to_json_line().split(",")[0].endswith(f'.{micros:06d}Z"')
