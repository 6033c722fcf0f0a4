"""Every benchmark runs with tiny numbers and ``python -m bench`` prints one table with every
row. Nothing here asserts a timing: the figures depend on the machine."""

from __future__ import annotations

import pytest

from bench import __main__ as bench_main
from bench.gateway import Row

GATEWAY_ROWS = {
    "ready after start (median)",
    "added latency p50, plain",
    "added latency p99, plain",
    "added latency p50, streamed",
    "added latency p99, streamed",
    "throughput, concurrency 1",
    "throughput, concurrency 16",
    "throughput, concurrency 64",
    "throughput c=16 / direct c=16",
    "gateway CPU per request (user+sys)",
    "floor: bare aiohttp proxy CPU per request",
    "gateway RSS after load",
    "added p50, plain / floor",
    "CPU per request / floor",
    "ready after start - floor",
    "RSS after load - floor",
}
HANDLER_ROWS = {
    "handler cache hit p50 (ChatService, real redis)",
    "handler cache hit p99",
    "  cache miss p50 (loopback Ollama fake)",
    "  cache miss p99",
    "  miss - hit, p50",
}
WARM_START_ROWS = {
    "first prompt wait, no warm-up",
    "first prompt wait, warmed at start",
    "warm-start saving / typing time",
}
ROUTING_ROWS = {
    "client routing added p50 (Router+Backend+translation)",
    "client routing added p99",
    "  bare aiohttp POST p50 (same upstream)",
}


def test_handler_and_routing_rows() -> None:
    handler = bench_main.handler_rows(True, n=5)
    routing = bench_main.routing_rows(True, n=5)
    assert {row.name for row in handler} == HANDLER_ROWS | {"  miss / hit, p50"}
    assert {row.name for row in routing} == ROUTING_ROWS
    assert all(isinstance(row, Row) for row in handler + routing)


def test_warm_start_rows() -> None:
    from bench import warm_start

    rows = warm_start.rows(True, shape=(0.4, 0.2))
    assert {row.name.split(" (")[0] for row in rows} == WARM_START_ROWS
    cold, warm, ratio = rows
    assert cold.value > warm.value  # the same prompt, with the cold start partly behind it
    assert ratio.ok is not None


def test_runpod_stream_rows() -> None:
    from bench import runpod_stream

    rows = runpod_stream.rows(True, shape=(5, 0.005, 1))
    names = [row.name for row in rows]
    assert any(name.startswith("time to first token, OpenAI route") for name in names)
    assert "  per-token lag p50, /stream polling" in names
    assert rows[-1].ok is not None


def test_one_command_prints_one_table_with_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    # the handler and routing benchmarks with tiny numbers; the gateway one as `--quick` runs it
    status = bench_main.main(["--quick", "--samples", "5"])
    out = capsys.readouterr().out
    assert status in (0, 1)  # 1 only says a target was missed on this machine
    assert out.count("## ccrelay benchmarks") == 1  # after the sessions tables, if they ran
    for name in GATEWAY_ROWS | HANDLER_ROWS | ROUTING_ROWS | WARM_START_ROWS:
        assert name.strip() in out, name
    for section in ("gateway", "handler", "routing", "warm_start", "runpod_stream"):
        assert f"\n{section} " in out


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_main.main(["nope"])
    assert "unknown benchmark" in capsys.readouterr().err
