"""What the client's routing costs: ``Router`` + ``Backend`` + translation against a bare POST.

Run through ``python -m bench`` (or ``python -m bench routing``). One loopback upstream (an
aiohttp server in this process answering a prebuilt OpenAI completion) and one aiohttp session;
each sample sends the ~50 KB Claude Code-sized request through ``runtime.router.complete`` (an
``openai`` backend: Anthropic -> OpenAI translation, the POST, status mapping, the reply
translated back, the attempt observer) and, paired with it, POSTs the already translated body
with the same session and decodes the reply. The difference is the routing layer's own cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench._payloads import claude_code_request, openai_completion
from bench._table import Row, nearest_rank
from ccrelay.backends.factory import load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.latency.observer import Attempt
from ccrelay.runtime import Runtime
from ccrelay_translate import anthropic_to_openai_request

__all__ = ["measure", "rows", "run"]

_COMPLETION = openai_completion("Done: the tests pass.", completion_tokens=9)


class _Count:
    def __init__(self) -> None:
        self.attempts = 0

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts += 1


async def measure(n: int) -> dict[str, float]:
    """Microseconds per request, routed and bare (p50, p99), over ``n`` interleaved pairs."""
    body = orjson.dumps(_COMPLETION)

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base_url = f"http://127.0.0.1:{port}/v1"
    document = {
        "active": "bench",
        "backends": {
            "bench": {"type": "openai", "base_url": base_url, "api_key": "bench-key"},
        },
    }
    config = load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
    )
    request = claude_code_request()
    translated = orjson.dumps(anthropic_to_openai_request(request, model="bench", stream=False))
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}
    observer = _Count()
    routed: list[float] = []
    bare: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            runtime = Runtime(config, session, observer=observer)
            router = runtime.router

            async def via_router() -> None:
                await router.complete(dict(request), RequestOptions(request_id="bench"))

            async def direct() -> None:
                async with session.post(
                    base_url + "/chat/completions", data=translated, headers=headers
                ) as response:
                    orjson.loads(await response.read())

            for _ in range(min(50, n)):
                await via_router()
                await direct()
            for i in range(n):
                pair = (via_router, direct) if i % 2 else (direct, via_router)
                for call in pair:
                    started = time.perf_counter()
                    await call()
                    elapsed = (time.perf_counter() - started) * 1e6
                    (routed if call is via_router else bare).append(elapsed)
            await runtime.factory.aclose()
    finally:
        await runner.cleanup()
    return {
        "n": n,
        "routed_p50_us": nearest_rank(routed, 0.5),
        "routed_p99_us": nearest_rank(routed, 0.99),
        "bare_p50_us": nearest_rank(bare, 0.5),
        "bare_p99_us": nearest_rank(bare, 0.99),
        "attempts": observer.attempts,
    }


async def run(n: int) -> list[Row]:
    figures: dict[str, Any] = await measure(n)
    return [
        Row(
            "client routing added p50 (Router+Backend+translation)",
            figures["routed_p50_us"] - figures["bare_p50_us"],
            "us/req",
        ),
        Row(
            "client routing added p99", figures["routed_p99_us"] - figures["bare_p99_us"], "us/req"
        ),
        Row("  bare aiohttp POST p50 (same upstream)", figures["bare_p50_us"], "us/req"),
    ]


def rows(n: int) -> list[Row]:
    return asyncio.run(run(n))
