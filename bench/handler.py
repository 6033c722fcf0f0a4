"""The handler's cache: a hit (one Redis GET inside ``ChatService``) against a miss (Ollama).

Run through ``python -m bench`` (or ``python -m bench handler``). Both are measured in the same
run against the same private redis-server: the hit with :func:`bench.handler_cache.measure_cache_hit`,
the miss by sending ``n`` distinct requests through a ``ChatService`` whose Ollama is a loopback
aiohttp server answering a prebuilt completion at once, so a miss's figure is the handler's own
work plus one loopback HTTP round trip and a Redis store: the least a real miss can cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from bench._table import Row, nearest_rank
from bench.handler_cache import _COMPLETION, _REQUEST, _free_port, _redis_server, measure_cache_hit
from ccrelay_handler.request import parse_chat_request
from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings

__all__ = ["measure_cache_miss", "rows", "run"]


async def _ollama() -> tuple[web.AppRunner, str]:
    """A loopback stand-in for Ollama's OpenAI API that answers at once."""
    body = json.dumps(_COMPLETION).encode()

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def measure_cache_miss(n: int) -> dict[str, Any]:
    """p50/p99 milliseconds of ``ChatService.complete`` for ``n`` misses (distinct requests)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    handler_logger = logging.getLogger("ccrelay.handler")
    previous_level = handler_logger.level
    handler_logger.setLevel(logging.WARNING)
    runner, ollama_url = await _ollama()
    try:
        with _redis_server() as redis_url:
            service = ChatService(
                HandlerSettings.from_env({"REDIS_URL": redis_url, "OLLAMA_HOST": ollama_url})
            )
            try:

                def request(n: int) -> Any:
                    messages = [*_REQUEST["messages"], {"role": "user", "content": f"#{n}"}]
                    return parse_chat_request({**_REQUEST, "messages": messages})

                for i in range(min(50, n)):  # warm the connections and the code paths
                    await service.complete(request(-1 - i))
                samples = []
                for i in range(n):
                    started = time.perf_counter()
                    await service.complete(request(i))
                    samples.append((time.perf_counter() - started) * 1000)
            finally:
                await service.aclose()
    finally:
        handler_logger.setLevel(previous_level)
        await runner.cleanup()
    return {"n": n, "p50_ms": nearest_rank(samples, 0.5), "p99_ms": nearest_rank(samples, 0.99)}


async def run(n: int) -> list[Row]:
    hit = await measure_cache_hit(n)
    miss = await measure_cache_miss(n)
    return [
        Row("handler cache hit p50 (ChatService, real redis)", hit["p50_ms"], "ms"),
        Row("handler cache hit p99", hit["p99_ms"], "ms"),
        Row("  cache miss p50 (loopback Ollama fake)", miss["p50_ms"], "ms"),
        Row("  cache miss p99", miss["p99_ms"], "ms"),
        Row("  miss - hit, p50", miss["p50_ms"] - hit["p50_ms"], "ms"),
        Row("  miss / hit, p50", miss["p50_ms"] / hit["p50_ms"], "x"),
    ]


def rows(n: int) -> list[Row]:
    return asyncio.run(run(n))
