"""Streaming from a RunPod endpoint: polling ``/stream`` against the endpoint's OpenAI route.

Run through ``python -m bench`` (or ``python -m bench runpod_stream``). A loopback RunPod
(``tests/fakes/runpod_jobs.py``) whose worker streams ``TOKENS`` tokens ``INTERVAL_S`` apart, as a
warm Qwen3-Coder does, serves both ways of streaming a job:

- ``poll``: ``POST /run``, then ``/stream/{id}`` every ``stream_poll_s`` (0.1 s, the default);
  the tokens produced since the last poll arrive together;
- ``openai``: ``POST /openai/v1/chat/completions``; RunPod relays the worker's SSE as it is
  yielded.

For each, the same streamed request goes through the router (a `Runtime`, as the gateway has),
and every text delta's arrival is matched with the moment the worker produced it (both clocks
are this process's ``perf_counter``). Reported: the time to the first token, and the per-token
lag (arrival minus production) at p50 and p99. The worker's own pace is the floor: with no
transport, the first token comes after one interval and the lag is zero.

The fake lives with the tests; the benchmarks run from the repository root, where ``tests`` is
importable.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench._table import Row, nearest_rank
from ccrelay.backends.factory import load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.runtime import Runtime

__all__ = ["measure", "rows"]

TOKENS = 50
INTERVAL_S = 0.020
_PROMPT = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 400,
    "stream": True,
    "messages": [{"role": "user", "content": "Explain the failing test."}],
}


async def one_stream(mode: str, tokens: int, interval_s: float) -> dict[str, Any]:
    """Time to first token and each token's lag (seconds) for one streamed request."""
    from tests.fakes.runpod_jobs import FakeRunPod, paced_worker

    produced: list[float] = []
    pieces = [f"t{n} " for n in range(tokens)]
    fake = await FakeRunPod(
        worker=paced_worker(pieces, interval_s=interval_s, log=produced)
    ).start()
    backend = {
        "type": "runpod",
        "endpoint_url": fake.endpoint_url,
        "api_key": fake.api_key,
        "stream_mode": mode,
    }
    document = {"backends": {"rp": backend}}
    config = load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
    )
    arrivals: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            runtime = Runtime(config, session)
            started = time.perf_counter()
            served = await runtime.router.open_stream(
                dict(_PROMPT), RequestOptions(request_id=f"bench-{mode}")
            )
            stream = served.result
            async for event in stream:
                delta = event.get("delta") if event.get("type") == "content_block_delta" else None
                if isinstance(delta, dict) and delta.get("text"):
                    now = time.perf_counter()
                    arrivals.extend(now for _ in delta["text"].split())
            await runtime.factory.aclose()
    finally:
        await fake.close()
    if len(arrivals) != len(produced):
        raise RuntimeError(f"{mode}: {len(arrivals)} tokens arrived, {len(produced)} were sent")
    lags = [arrived - made for arrived, made in zip(arrivals, produced, strict=True)]
    return {"ttft_s": arrivals[0] - started, "lags_s": lags}


async def measure(tokens: int, interval_s: float, repeats: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for mode in ("poll", "openai"):
        ttfts: list[float] = []
        lags: list[float] = []
        for _ in range(repeats):
            result = await one_stream(mode, tokens, interval_s)
            ttfts.append(result["ttft_s"])
            lags.extend(result["lags_s"])
        figures[mode] = {
            "ttft_ms": nearest_rank(ttfts, 0.5) * 1000,
            "lag_p50_ms": nearest_rank(lags, 0.5) * 1000,
            "lag_p99_ms": nearest_rank(lags, 0.99) * 1000,
        }
    return figures


def rows(quick: bool, shape: tuple[int, float, int] | None = None) -> list[Row]:
    tokens, interval_s, repeats = shape or (
        (20, INTERVAL_S, 1) if quick else (TOKENS, INTERVAL_S, 3)
    )
    figures = asyncio.run(measure(tokens, interval_s, repeats))
    poll, route = figures["poll"], figures["openai"]
    lead = f"{tokens} tokens {interval_s * 1000:g} ms apart"
    return [
        Row(f"time to first token, OpenAI route ({lead})", route["ttft_ms"], "ms"),
        Row("  time to first token, /stream polling", poll["ttft_ms"], "ms"),
        Row("per-token lag p50, OpenAI route", route["lag_p50_ms"], "ms"),
        Row("per-token lag p99, OpenAI route", route["lag_p99_ms"], "ms"),
        Row("  per-token lag p50, /stream polling", poll["lag_p50_ms"], "ms"),
        Row("  per-token lag p99, /stream polling", poll["lag_p99_ms"], "ms"),
        Row(
            "polling lag p50 / OpenAI route lag p50 (the default streams by the route)",
            poll["lag_p50_ms"] / max(route["lag_p50_ms"], 1e-3),
            "x",
            "> 1",
            route["lag_p50_ms"] < poll["lag_p50_ms"],
        ),
    ]
