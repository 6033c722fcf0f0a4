"""The processes `bench.gateway` measures, and how it reads their CPU time, memory and readiness.

- the upstream: an OpenAI-compatible server answering at once from prebuilt bytes (a
  completion, or a short SSE stream; chunks spaced `SPACING_MS` apart for ``spaced-model``);
- the floor: the least a Python gateway on aiohttp does per request (`serve_floor`);
- the gateway, started as a user starts it (``python -m ccrelay.cli serve``), its latency
  records written under a state folder of the benchmark's own.

Each runs as its own process (``python -m bench.gateway --upstream PORT`` / ``--floor PORT
UPSTREAM_PORT``), so /proc gives each one's CPU seconds and resident memory apart. Each keeps
its bytecode in the benchmark's own cache folder (``PYTHONPYCACHEPREFIX``), as an installed
ccrelay has it: with ``PYTHONDONTWRITEBYTECODE`` set, every start would compile the checkout's
modules from source (about 90 of the gateway's, a few of the floor's).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench._payloads import openai_completion

__all__ = [
    "REPO",
    "SPACED_CHUNKS",
    "SPACING_MS",
    "child_env",
    "cores",
    "cpu_s",
    "free_port",
    "gateway_env",
    "rss_mb",
    "serve_floor",
    "serve_upstream",
    "start_floor",
    "start_gateway",
    "start_upstream",
    "stop",
    "wait_ready",
]

REPO = Path(__file__).resolve().parents[1]
SPACING_MS = 20.0
SPACED_CHUNKS = 10


# -- the upstream ---------------------------------------------------------------------------------


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


def serve_upstream(port: int) -> None:
    from aiohttp import web

    web.run_app(_upstream_app(), host="127.0.0.1", port=port, access_log=None, print=None)


def serve_floor(port: int, upstream_port: int) -> None:
    """The floor: the least a Python gateway on aiohttp does per request. It reads the body,
    decodes and re-encodes it with orjson, POSTs it upstream on one session, and hands the
    reply back decoded and re-encoded; no translation, routing, records or logging.

    ``POST /trim`` gives freed memory back to the system (glibc's ``malloc_trim(0)``, what
    the gateway does by itself once idle), so the two are compared on what they hold, not on
    glibc's high-water marks."""
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

        async def trim(request: web.Request) -> web.Response:
            return web.Response(text=str(_malloc_trim()))

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", proxy)
        app.router.add_get("/health", health)
        app.router.add_post("/trim", trim)
        app.on_cleanup.append(lambda _app: session.close())
        return app

    web.run_app(make(), host="127.0.0.1", port=port, access_log=None, print=None)


def _malloc_trim() -> int:
    """glibc's ``malloc_trim(0)``: 1 when memory went back, 0 when none did or not on glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return int(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return 0


# -- starting and stopping ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cores() -> tuple[set[int] | None, set[int] | None]:
    """(gateway cores, everything else) when there are two cores or more to split."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def _pinned(on: set[int] | None) -> Callable[[], None] | None:
    if on is None:
        return None
    return lambda: os.sched_setaffinity(0, on)


def child_env(bytecode: Path) -> dict[str, str]:
    """This process's environment for a child: the checkout on its path, its bytecode kept
    in `bytecode`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=str(bytecode))
    return env


def gateway_env(upstream_url: str, state_dir: Path) -> dict[str, str]:
    """Two ``openai`` backends on the upstream (``spaced`` streams slowly); records in
    `state_dir` (JSONL on, as a user's default config has it, but not in their home), its
    bytecode in ``state_dir / "bytecode"``."""
    config = {
        "active": "fast",
        "backends": {
            name: {"type": "openai", "base_url": upstream_url, "model": model, "api_key": "bench"}
            for name, model in (("fast", "bench-model"), ("spaced", "spaced-model"))
        },
    }
    env = child_env(state_dir / "bytecode")
    for name in [k for k in env if k.startswith(("LLM_BACKEND", "CCRELAY_"))]:
        del env[name]
    env.update(
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=json.dumps(config),
        CCRELAY_STATE_DIR=str(state_dir),
    )
    return env


def start_gateway(
    port: int, env: dict[str, str], on: set[int] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ccrelay.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pinned(on),
    )


def _start_bench(args: list[str], bytecode: Path, on: set[int] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.gateway", *args],
        cwd=REPO,
        env=child_env(bytecode),
        preexec_fn=_pinned(on),
    )


def start_floor(
    port: int, upstream_port: int, bytecode: Path, on: set[int] | None = None
) -> subprocess.Popen[bytes]:
    return _start_bench(["--floor", str(port), str(upstream_port)], bytecode, on)


def start_upstream(
    port: int, bytecode: Path, on: set[int] | None = None
) -> subprocess.Popen[bytes]:
    return _start_bench(["--upstream", str(port)], bytecode, on)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_ready(
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


# -- reading a process ----------------------------------------------------------------------------


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
