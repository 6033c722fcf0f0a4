"""What the gateway costs: added latency, throughput, streaming pass-through, memory, start-up.

Run: ``python -m bench.gateway [--quick]`` (or through ``python -m bench``).

Three processes on loopback:

- an upstream OpenAI-compatible server that answers at once from prebuilt bytes (a completion,
  or a short SSE stream; chunks spaced 20 ms apart for the ``spaced-model``);
- the gateway, started as ``ccrelay`` would be (``python -m ccrelay.cli serve``), with an
  ``openai`` backend pointing at that upstream;
- this process, the client.

Each measurement sends the same ~50 KB Claude Code-sized request (system prompt, 16 tools,
a tool-use history) through the gateway and, for the baseline, straight to the upstream with
the equivalent OpenAI body (the gateway's own translation of it, computed once). Added latency
is the difference of the two paths' percentiles. Throughput is non-streamed requests per second
through the one gateway process at a fixed concurrency; the gateway's own CPU time per request
(from /proc) gives its capacity on one busy core, a figure that holds up on a shared machine
where wall-clock rates do not. With ``--pin`` the gateway gets one core to itself and the
client and upstream the others.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench._payloads import claude_code_request, openai_completion
from bench._table import Row, format_rows

__all__ = ["Row", "claude_code_request", "format_table", "main", "run"]

REPO = Path(__file__).resolve().parents[1]
SPACING_MS = 20.0
SPACED_CHUNKS = 10


def format_table(rows: Sequence[Row], title: str = "gateway") -> str:
    return format_rows(rows, title)


# -- the upstream (runs as its own process) ------------------------------------------------------


def _upstream_app() -> Any:
    import orjson
    from aiohttp import web

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1}
    completion = orjson.dumps(openai_completion("All tests pass.", completion_tokens=5))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    usage = {**base, "choices": [], "usage": {"prompt_tokens": 12000, "completion_tokens": 5}}
    head = chunk({"role": "assistant", "content": ""})
    pieces = [chunk({"content": f"piece {i} "}) for i in range(SPACED_CHUNKS)]
    tail = chunk({}, "stop") + b"data: " + orjson.dumps(usage) + b"\n\ndata: [DONE]\n\n"
    fast_stream = head + b"".join(pieces[:4]) + tail

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if b'"stream":true' not in raw:
            return web.Response(body=completion, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if b"spaced-model" in raw:
            await response.write(head)
            for piece in pieces:
                await asyncio.sleep(SPACING_MS / 1000)
                await response.write(piece)
            await response.write(tail)
        else:
            await response.write(fast_stream)
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench-model"}]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


def _serve_upstream(port: int) -> None:
    from aiohttp import web

    web.run_app(_upstream_app(), host="127.0.0.1", port=port, access_log=None, print=None)


def _serve_floor(port: int, upstream_port: int) -> None:
    """The floor: the least a Python gateway on aiohttp does per request. It reads the body,
    decodes and re-encodes it with orjson, POSTs it upstream on one session, and hands the
    reply back decoded and re-encoded; no translation, routing, records or logging."""
    import orjson
    from aiohttp import ClientSession, web

    url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"

    async def make() -> web.Application:
        session = ClientSession()

        async def proxy(request: web.Request) -> web.Response:
            body = orjson.dumps(orjson.loads(await request.read()))
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as reply:
                data = orjson.dumps(orjson.loads(await reply.read()))
            return web.Response(body=data, content_type="application/json")

        async def health(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", proxy)
        app.router.add_get("/health", health)
        app.on_cleanup.append(lambda _app: session.close())
        return app

    web.run_app(make(), host="127.0.0.1", port=port, access_log=None, print=None)


# -- processes ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cores() -> tuple[set[int] | None, set[int] | None]:
    """(gateway cores, everything else) when there are two cores or more to split."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def _pinned(cores: set[int] | None) -> Callable[[], None] | None:
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def _gateway_env(upstream_url: str) -> dict[str, str]:
    config = {
        "active": "fast",
        "backends": {
            name: {"type": "openai", "base_url": upstream_url, "model": model, "api_key": "bench"}
            for name, model in (("fast", "bench-model"), ("spaced", "spaced-model"))
        },
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_BACKEND", "CCRELAY_"))}
    env.update(
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=json.dumps(config),
        PYTHONPATH=str(REPO),
    )
    return env


def _start_gateway(
    port: int, env: dict[str, str], cores: set[int] | None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ccrelay.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pinned(cores),
    )


def _start_floor(port: int, upstream_port: int, cores: set[int] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.gateway", "--floor", str(port), str(upstream_port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=_pinned(cores),
    )


def _start_upstream(port: int, cores: set[int] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.gateway", "--upstream", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=_pinned(cores),
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes], deadline_s: float
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before it was ready")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.002)
    raise RuntimeError(f"{url} was not ready within {deadline_s} s")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# -- measurements ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _time_pairs(
    n: int, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
) -> tuple[list[float], list[float]]:
    """Latency samples (ms) of two calls, interleaved so both see the same machine load."""
    for _ in range(min(50, n)):  # warm the connections and caches
        await first()
        await second()
    a, b = [], []
    for _ in range(n):
        started = time.perf_counter()
        await first()
        middle = time.perf_counter()
        await second()
        a.append((middle - started) * 1000)
        b.append((time.perf_counter() - middle) * 1000)
    return a, b


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _throughput(concurrency: int, total: int, call: Callable[[], Awaitable[None]]) -> float:
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


async def _chunk_deltas(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], marker: bytes
) -> list[float]:
    """Arrival gaps (ms) between the content chunks of one spaced stream."""
    arrivals = []
    async with session.post(url, data=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(marker) and b"piece" in line:
                arrivals.append(time.perf_counter() * 1000)
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def _floor_rows(
    session: aiohttp.ClientSession,
    upstream_port: int,
    body: bytes,
    per_level: int,
    *,
    samples: int,
    direct: Callable[[], Awaitable[None]],
    direct_16: float,
) -> list[Row]:
    """The same load through `_serve_floor`: what any aiohttp gateway pays, for scale. Each
    gateway target gets its floor figure, measured the same way in the same run."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    floor = _start_floor(port, upstream_port, None)
    try:
        await _wait_ready(session, url + "/health", floor, 20)
        ready = time.perf_counter() - started

        async def call() -> None:
            async with session.post(url + "/v1/messages", data=body) as response:
                await response.read()

        via_floor, base = await _time_pairs(samples, call, direct)
        before = _cpu_s(floor.pid)
        rate = await _throughput(16, per_level, call)
        cpu_ms = (_cpu_s(floor.pid) - before) / (2 * per_level) * 1000
        rss, _ = _rss_mb(floor.pid)
    finally:
        _stop(floor)
    return [
        Row(
            "  floor: bare aiohttp proxy added p50, plain",
            _pct(via_floor, 0.5) - _pct(base, 0.5),
            "ms",
        ),
        Row(
            "  floor: bare aiohttp proxy added p99, plain",
            _pct(via_floor, 0.99) - _pct(base, 0.99),
            "ms",
        ),
        Row("  floor: bare aiohttp proxy CPU per request", cpu_ms, "ms"),
        Row("  floor: bare aiohttp proxy, concurrency 16", rate, "req/s"),
        Row("  floor: bare aiohttp proxy c=16 / direct c=16", rate / direct_16, "x"),
        Row("  floor: bare aiohttp proxy RSS after load", rss, "MB"),
        Row("  floor: bare aiohttp proxy ready after start", ready, "s"),
    ]


async def run(quick: bool = False, *, pin: bool = False) -> list[Row]:
    """Start the upstream and the gateway, measure, stop them; the figures as rows."""
    import orjson

    from ccrelay_translate import anthropic_to_openai_request

    load = os.getloadavg()[0]
    samples = 300 if quick else 2000
    per_level = 1000 if quick else 4000
    gateway_cores, other_cores = _cores() if pin else (None, None)
    if other_cores is not None:
        os.sched_setaffinity(0, other_cores)

    request = claude_code_request()
    anthropic_body = orjson.dumps(request)
    stream_body = orjson.dumps({**request, "stream": True})
    openai_body = orjson.dumps(
        anthropic_to_openai_request(request, model="bench-model", stream=False)
    )
    openai_stream = orjson.dumps(
        anthropic_to_openai_request(request, model="bench-model", stream=True)
    )
    openai_spaced = orjson.dumps(
        anthropic_to_openai_request(request, model="spaced-model", stream=True)
    )
    json_headers = {"Content-Type": "application/json"}

    upstream_port, gateway_port = _free_port(), _free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    env = _gateway_env(upstream_url)
    upstream = _start_upstream(upstream_port, other_cores)
    rows: list[Row] = []
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            await _wait_ready(session, upstream_url + "/models", upstream, 20)

            # start-up: process start to the first good /health, a few times
            ready = []
            for _ in range(3 if quick else 5):
                process = _start_gateway(gateway_port, env, gateway_cores)
                started = time.perf_counter()
                try:
                    await _wait_ready(session, gateway_url + "/health", process, 20)
                    ready.append(time.perf_counter() - started)
                finally:
                    _stop(process)
            rows.append(
                Row(
                    "ready after start (median)",
                    statistics.median(ready),
                    "s",
                    "<= 0.3",
                    statistics.median(ready) <= 0.3,
                )
            )

            gateway = _start_gateway(gateway_port, env, gateway_cores)
            try:
                await _wait_ready(session, gateway_url + "/health", gateway, 20)

                async def post(
                    url: str, body: bytes, headers: dict[str, str] = json_headers
                ) -> None:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{url}: HTTP {response.status}")

                via_gateway = gateway_url + "/v1/messages"
                direct = upstream_url + "/chat/completions"
                plain_gw, plain_direct = await _time_pairs(
                    samples,
                    lambda: post(via_gateway, anthropic_body),
                    lambda: post(direct, openai_body),
                )
                stream_gw, stream_direct = await _time_pairs(
                    samples,
                    lambda: post(via_gateway, stream_body),
                    lambda: post(direct, openai_stream),
                )
                for label, gw, base in (
                    ("plain", plain_gw, plain_direct),
                    ("streamed", stream_gw, stream_direct),
                ):
                    p50 = _pct(gw, 0.5) - _pct(base, 0.5)
                    p99 = _pct(gw, 0.99) - _pct(base, 0.99)
                    rows.append(Row(f"added latency p50, {label}", p50, "ms", "<= 0.4", p50 <= 0.4))
                    rows.append(Row(f"added latency p99, {label}", p99, "ms", "<= 1.2", p99 <= 1.2))
                    rows.append(Row(f"  gateway path p50, {label}", _pct(gw, 0.5), "ms"))
                    rows.append(Row(f"  direct path p50, {label}", _pct(base, 0.5), "ms"))

                cpu_per_request = []
                rates = {}
                for concurrency in (1, 16, 64):
                    cpu_before = _cpu_s(gateway.pid)
                    rates[concurrency] = await _throughput(
                        concurrency, per_level, lambda: post(via_gateway, anthropic_body)
                    )
                    # the warm-up round and the measured one: 2 * per_level requests
                    cpu_per_request.append((_cpu_s(gateway.pid) - cpu_before) / (2 * per_level))
                    rows.append(
                        Row(f"throughput, concurrency {concurrency}", rates[concurrency], "req/s")
                    )
                direct_16 = await _throughput(16, per_level, lambda: post(direct, openai_body))
                ratio = rates[16] / direct_16
                rows.append(Row("  direct to upstream, concurrency 16", direct_16, "req/s"))
                rows.append(
                    Row("throughput c=16 / direct c=16", ratio, "x", ">= 0.5", ratio >= 0.5)
                )
                cpu_ms = statistics.median(cpu_per_request) * 1000
                rows.append(
                    Row("gateway CPU per request (user+sys)", cpu_ms, "ms", "<= 0.3", cpu_ms <= 0.3)
                )
                rows.append(
                    Row("  = capacity of one busy core", 1000 / cpu_ms if cpu_ms else 0.0, "req/s")
                )
                rows.extend(
                    await _floor_rows(
                        session,
                        upstream_port,
                        anthropic_body,
                        per_level,
                        samples=samples,
                        direct=lambda: post(direct, openai_body),
                        direct_16=direct_16,
                    )
                )

                spaced = orjson.dumps({**request, "stream": True})
                gw_deltas: list[float] = []
                direct_deltas: list[float] = []
                for _ in range(3 if quick else 10):
                    gw_deltas += await _chunk_deltas(
                        session,
                        via_gateway,
                        spaced,
                        {**json_headers, "x-ccrelay-backend": "spaced"},
                        b"data: ",
                    )
                    direct_deltas += await _chunk_deltas(
                        session, direct, openai_spaced, json_headers, b"data: "
                    )
                spread = max(abs(d - SPACING_MS) for d in gw_deltas)
                direct_spread = max(abs(d - SPACING_MS) for d in direct_deltas)
                rows.append(
                    Row(
                        "stream chunk gap p50 via gateway (upstream 20)", _pct(gw_deltas, 0.5), "ms"
                    )
                )
                rows.append(Row("  direct chunk gap p50", _pct(direct_deltas, 0.5), "ms"))
                rows.append(
                    Row(
                        "stream chunk gap, worst |gap - 20| via gateway",
                        spread,
                        "ms",
                        "<= 5",
                        spread <= 5,
                    )
                )
                rows.append(Row("  direct chunk gap, worst |gap - 20|", direct_spread, "ms"))

                rss, hwm = _rss_mb(gateway.pid)
                rows.append(Row("gateway RSS after load", rss, "MB", "<= 60", rss <= 60))
                rows.append(Row("  gateway peak RSS (VmHWM)", hwm, "MB"))
            finally:
                _stop(gateway)
        finally:
            _stop(upstream)
    rows.insert(0, Row("request size", len(anthropic_body) / 1000, "KB"))
    rows.insert(1, Row("machine load average (1 min) at start", load, f"on {os.cpu_count()} cores"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples (about 15 s)")
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
        _serve_upstream(args.upstream)
        return 0
    if args.floor:
        _serve_floor(*args.floor)
        return 0
    rows = asyncio.run(run(args.quick, pin=args.pin))
    print(format_table(rows))
    return 0 if all(row.ok is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
