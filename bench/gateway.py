"""What the gateway costs against the least any aiohttp gateway costs: latency, CPU, start-up, memory.

Run: ``python -m bench.gateway [--quick] [--pin]`` (or ``python -m bench gateway [--quick]``).

Four processes on loopback (`bench._gateway_procs`): an upstream OpenAI-compatible server that
answers at once from prebuilt bytes; the gateway, started as a user starts it (``python -m
ccrelay.cli serve``, INFO logging, latency records to JSONL in a temporary state folder) with an
``openai`` backend on that upstream; the floor, a bare aiohttp proxy doing the same I/O (it reads
the body, decodes and re-encodes it with orjson, POSTs it upstream, decodes and re-encodes the
reply; no translation, routing, records or logging); and this process, the client.

Every request is the same ~50 KB Claude Code-shaped request (system prompt, 16 tools, a
tool-use history). The four targets are held against the floor measured in the same run, on
the same machine, at the same moments (issue 20; the absolute targets of issue 15 sat below
what aiohttp itself costs here):

- **added latency p50, plain** (ms): gateway path p50 less the direct path's (the client POSTing
  the equivalent OpenAI body, the gateway's own translation of it, straight to the upstream);
  the floor's the same way; gateway, floor and direct calls interleaved one by one, so all
  three see the same load. Target: at most `LATENCY_RATIO` x the floor's.
- **CPU per request** (ms): the process's user + system CPU seconds (/proc, every thread) over
  a throughput run, divided by its requests; the median over concurrency 1, 16 and 64, the
  floor measured at the same levels right after. CPU time holds up on a shared machine where
  wall-clock rates do not. Target: at most `CPU_RATIO` x the floor's.
- **ready after start** (s): from starting the process to its first 200 on ``GET /health``; the
  median of several starts, gateway and floor alternating, after one of each not counted (it
  writes their bytecode, as installing does). Target: at most the floor's plus
  `READY_MORE_S`.
- **RSS after load** (MB): each process's resident memory `IDLE_S` seconds after the last
  throughput run, once freed memory has gone back to the system (the gateway gives it back by
  itself when idle, `ccrelay.gateway.memory`; the floor is asked to do the same), so this is
  what each holds, not glibc's high-water mark. Target: at most the floor's plus
  `RSS_MORE_MB`.

Each target shows three rows: the gateway's figure, the floor's, then the ratio or difference
with its target, marked MISSED when it falls short. The rest is context without targets:
added p99 and the streamed path, throughput against the direct path, the chunk gaps of a
stream spaced 20 ms apart upstream (held to 5 ms), peak memory. With ``--pin`` the gateway and
the floor get one core (they take turns) and the client and upstream the others.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp

from bench import _gateway_procs as procs
from bench._payloads import claude_code_request
from bench._table import Row, format_rows

__all__ = ["Row", "against_floor", "claude_code_request", "format_table", "main", "run"]

LATENCY_RATIO = 1.3
CPU_RATIO = 1.3
READY_MORE_S = 0.15
RSS_MORE_MB = 12.0
IDLE_S = 6.0
"""Idle time before reading memory: the gateway trims at most every 5 s, after 0.5 s idle."""
FLOOR = "  floor: bare aiohttp proxy"
Call = Callable[[], Awaitable[None]]


def format_table(rows: Sequence[Row], title: str = "gateway") -> str:
    return format_rows(rows, title)


def against_floor(
    name: str,
    short: str,
    value: float,
    floor: float,
    unit: str,
    *,
    ratio: float | None = None,
    more: float | None = None,
) -> list[Row]:
    """A target held against the floor: the gateway's figure, the floor's, and the gateway's
    as a ratio to the floor (at most `ratio`) or as a difference (at most `more`). A ratio to
    a floor of zero or less cannot be taken: it is reported as not a number, and missed."""
    rows = [Row(name, value, unit), Row(f"{FLOOR} {short}", floor, unit)]
    if ratio is not None:
        times = value / floor if floor > 0 else math.nan
        rows.append(Row(f"  {short} / floor", times, "x", f"<= {ratio:g}", times <= ratio))
    elif more is not None:
        gap = value - floor
        rows.append(Row(f"  {short} - floor", gap, unit, f"<= +{more:g}", gap <= more))
    return rows


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _time_interleaved(n: int, calls: Sequence[Call]) -> list[list[float]]:
    """Latency samples (ms) of each call, taken in turn so all see the same machine load."""
    for _ in range(min(50, n)):  # warm the connections and caches
        for call in calls:
            await call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for call, times in zip(calls, samples, strict=True):
            started = time.perf_counter()
            await call()
            times.append((time.perf_counter() - started) * 1000)
    return samples


async def _throughput(concurrency: int, total: int, call: Call) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up round
    remaining = total
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def _cpu_and_rate(pid: int, concurrency: int, total: int, call: Call) -> tuple[float, float]:
    """(CPU ms per request, requests per second) of one throughput run at `concurrency`."""
    before = procs.cpu_s(pid)
    rate = await _throughput(concurrency, total, call)
    # the warm-up round and the measured one: 2 * total requests
    return (procs.cpu_s(pid) - before) / (2 * total) * 1000, rate


async def _chunk_deltas(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> list[float]:
    """Arrival gaps (ms) between the content chunks of one spaced stream."""
    arrivals = []
    async with session.post(url, data=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data: ") and b"piece" in line:
                arrivals.append(time.perf_counter() * 1000)
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def _ready_times(
    session: aiohttp.ClientSession,
    starts: int,
    env: dict[str, str],
    upstream_port: int,
    on: set[int] | None,
) -> tuple[float, float]:
    """Median start-to-ready seconds of the gateway and the floor, started alternately, after
    one start of each that is not counted (it writes their bytecode)."""
    gateway: list[float] = []
    floor: list[float] = []
    bytecode = Path(env["PYTHONPYCACHEPREFIX"])
    for n in range(starts + 1):
        for times, start in (
            (gateway, lambda port: procs.start_gateway(port, env, on)),
            (floor, lambda port: procs.start_floor(port, upstream_port, bytecode, on)),
        ):
            port = procs.free_port()
            started = time.perf_counter()
            process = start(port)
            try:
                await procs.wait_ready(session, f"http://127.0.0.1:{port}/health", process, 20)
                if n:
                    times.append(time.perf_counter() - started)
            finally:
                procs.stop(process)
    return statistics.median(gateway), statistics.median(floor)


async def run(quick: bool = False, *, pin: bool = False) -> list[Row]:
    """Start the upstream, the gateway and the floor, measure, stop them; the figures as rows."""
    import orjson

    from ccrelay_translate import anthropic_to_openai_request

    load = os.getloadavg()[0]
    samples = 300 if quick else 2000
    per_level = 1000 if quick else 4000
    gateway_cores, other_cores = procs.cores() if pin else (None, None)
    if other_cores is not None:
        os.sched_setaffinity(0, other_cores)

    request = claude_code_request()
    anthropic_body = orjson.dumps(request)
    stream_body = orjson.dumps({**request, "stream": True})
    openai_body, openai_stream, openai_spaced = (
        orjson.dumps(anthropic_to_openai_request(request, model=model, stream=stream))
        for model, stream in (("bench-model", False), ("bench-model", True), ("spaced-model", True))
    )
    json_headers = {"Content-Type": "application/json"}

    upstream_port, gateway_port, floor_port = (procs.free_port() for _ in range(3))
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    floor_url = f"http://127.0.0.1:{floor_port}"
    state = tempfile.TemporaryDirectory(prefix="ccrelay-bench-")
    env = procs.gateway_env(upstream_url, Path(state.name))
    bytecode = Path(env["PYTHONPYCACHEPREFIX"])
    upstream = procs.start_upstream(upstream_port, bytecode, other_cores)
    rows: list[Row] = []
    info: list[Row] = []
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            await procs.wait_ready(session, upstream_url + "/models", upstream, 20)
            ready, floor_ready = await _ready_times(
                session, 3 if quick else 5, env, upstream_port, gateway_cores
            )
            gateway = procs.start_gateway(gateway_port, env, gateway_cores)
            floor = procs.start_floor(floor_port, upstream_port, bytecode, gateway_cores)
            try:
                await procs.wait_ready(session, gateway_url + "/health", gateway, 20)
                await procs.wait_ready(session, floor_url + "/health", floor, 20)

                def post(url: str, body: bytes, headers: dict[str, str] = json_headers) -> Call:
                    async def call() -> None:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            if response.status != 200:
                                raise RuntimeError(f"{url}: HTTP {response.status}")

                    return call

                via_gateway = post(gateway_url + "/v1/messages", anthropic_body)
                via_floor = post(floor_url + "/v1/messages", anthropic_body)
                direct = post(upstream_url + "/chat/completions", openai_body)
                plain, floor_plain, plain_direct = await _time_interleaved(
                    samples, (via_gateway, via_floor, direct)
                )
                streamed, streamed_direct = await _time_interleaved(
                    samples,
                    (
                        post(gateway_url + "/v1/messages", stream_body),
                        post(upstream_url + "/chat/completions", openai_stream),
                    ),
                )

                cpu: list[float] = []
                floor_cpu: list[float] = []
                rates: dict[int, float] = {}
                floor_rates: dict[int, float] = {}
                for concurrency in (1, 16, 64):
                    spent, rates[concurrency] = await _cpu_and_rate(
                        gateway.pid, concurrency, per_level, via_gateway
                    )
                    cpu.append(spent)
                    spent, floor_rates[concurrency] = await _cpu_and_rate(
                        floor.pid, concurrency, per_level, via_floor
                    )
                    floor_cpu.append(spent)
                direct_16 = await _throughput(16, per_level, direct)
                await asyncio.sleep(IDLE_S)  # the gateway gives memory back once idle
                async with session.post(floor_url + "/trim") as response:
                    await response.read()  # the floor, when asked
                rss, hwm = procs.rss_mb(gateway.pid)
                floor_rss, _ = procs.rss_mb(floor.pid)

                gw_deltas: list[float] = []
                direct_deltas: list[float] = []
                spaced_body = orjson.dumps({**request, "stream": True})
                for _ in range(3 if quick else 10):
                    gw_deltas += await _chunk_deltas(
                        session,
                        gateway_url + "/v1/messages",
                        spaced_body,
                        {**json_headers, "x-ccrelay-backend": "spaced"},
                    )
                    direct_deltas += await _chunk_deltas(
                        session, upstream_url + "/chat/completions", openai_spaced, json_headers
                    )
            finally:
                procs.stop(gateway)
                procs.stop(floor)
        finally:
            procs.stop(upstream)
            state.cleanup()

    added = _pct(plain, 0.5) - _pct(plain_direct, 0.5)
    floor_added = _pct(floor_plain, 0.5) - _pct(plain_direct, 0.5)
    rows += against_floor(
        "added latency p50, plain",
        "added p50, plain",
        added,
        floor_added,
        "ms",
        ratio=LATENCY_RATIO,
    )
    cpu_ms, floor_cpu_ms = statistics.median(cpu), statistics.median(floor_cpu)
    rows += against_floor(
        "gateway CPU per request (user+sys)",
        "CPU per request",
        cpu_ms,
        floor_cpu_ms,
        "ms",
        ratio=CPU_RATIO,
    )
    rows += against_floor(
        "ready after start (median)",
        "ready after start",
        ready,
        floor_ready,
        "s",
        more=READY_MORE_S,
    )
    rows += against_floor(
        "gateway RSS after load", "RSS after load", rss, floor_rss, "MB", more=RSS_MORE_MB
    )

    info.append(Row("  gateway path p50, plain", _pct(plain, 0.5), "ms"))
    info.append(Row("  direct path p50, plain", _pct(plain_direct, 0.5), "ms"))
    p99 = _pct(plain, 0.99) - _pct(plain_direct, 0.99)
    info.append(Row("added latency p99, plain", p99, "ms"))
    floor_p99 = _pct(floor_plain, 0.99) - _pct(plain_direct, 0.99)
    info.append(Row(f"{FLOOR} added p99, plain", floor_p99, "ms"))
    info.append(
        Row(
            "added latency p50, streamed",
            _pct(streamed, 0.5) - _pct(streamed_direct, 0.5),
            "ms",
        )
    )
    info.append(
        Row(
            "added latency p99, streamed",
            _pct(streamed, 0.99) - _pct(streamed_direct, 0.99),
            "ms",
        )
    )
    for concurrency in (1, 16, 64):
        info.append(Row(f"throughput, concurrency {concurrency}", rates[concurrency], "req/s"))
    info.append(Row(f"{FLOOR}, concurrency 16", floor_rates[16], "req/s"))
    info.append(Row("  direct to upstream, concurrency 16", direct_16, "req/s"))
    info.append(Row("throughput c=16 / direct c=16", rates[16] / direct_16, "x"))
    info.append(Row(f"{FLOOR} c=16 / direct c=16", floor_rates[16] / direct_16, "x"))
    info.append(Row("  = capacity of one busy core", 1000 / cpu_ms if cpu_ms else 0.0, "req/s"))
    info.append(Row("  gateway peak RSS (VmHWM)", hwm, "MB"))
    spread = max(abs(d - procs.SPACING_MS) for d in gw_deltas)
    direct_spread = max(abs(d - procs.SPACING_MS) for d in direct_deltas)
    info.append(Row("stream chunk gap p50 via gateway (upstream 20)", _pct(gw_deltas, 0.5), "ms"))
    info.append(Row("  direct chunk gap p50", _pct(direct_deltas, 0.5), "ms"))
    info.append(
        Row("stream chunk gap, worst |gap - 20| via gateway", spread, "ms", "<= 5", spread <= 5)
    )
    info.append(Row("  direct chunk gap, worst |gap - 20|", direct_spread, "ms"))
    return [
        Row("request size", len(anthropic_body) / 1000, "KB"),
        Row("machine load average (1 min) at start", load, f"on {os.cpu_count()} cores"),
        *rows,
        *info,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples (about 30 s)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway to one core and the rest to the others (on an otherwise idle "
        "machine; on a shared one it only adds interference)",
    )
    parser.add_argument("--upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, nargs=2, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.upstream:
        procs.serve_upstream(args.upstream)
        return 0
    if args.floor:
        procs.serve_floor(*args.floor)
        return 0
    rows = asyncio.run(run(args.quick, pin=args.pin))
    print(format_table(rows))
    return 0 if all(row.ok is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
