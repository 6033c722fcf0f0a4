"""What a warm start saves: the first prompt of a session against a scale-to-zero RunPod endpoint.

Run through ``python -m bench`` (or ``python -m bench warm_start``). Two sessions side by side,
each with its own loopback RunPod (``tests/fakes/runpod_jobs.py``: no worker until the first job,
then one ready ``cold_start_s`` later, as a RunPod endpoint at zero workers behaves) and its own
`Runtime`, as `ccrelay code` builds one. The user takes ``typing_s`` to type the first prompt,
which is then streamed through the router; the figure is how long they wait for the whole
answer. One session sends nothing before the prompt (`ccrelay code --no-warm`), the other starts
the warm-up `ccrelay code` starts (`ccrelay.coldstart.warmup`). The saving should be the typing time,
capped by the cold start: the cold start ran while the user typed.

The fake lives with the tests; the benchmarks run from the repository root, where ``tests``
is importable.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp

from bench._table import Row
from ccrelay.backends.factory import load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.coldstart.warmup import start_warm_ups
from ccrelay.runtime import Runtime

__all__ = ["first_prompt_wait", "rows"]

FULL = (5.0, 3.0)  # cold start, typing time: the 5 s cold start
QUICK = (1.0, 0.6)
_PROMPT = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 200,
    "stream": True,
    "messages": [{"role": "user", "content": "Add a --verbose flag to the CLI."}],
}


async def first_prompt_wait(cold_start_s: float, typing_s: float, *, warm: bool) -> float:
    """Seconds from sending the first prompt to the end of its streamed answer."""
    from tests.fakes.runpod_jobs import FakeRunPod

    fake = await FakeRunPod(cold_start_s=cold_start_s).start()
    document = {
        "backends": {
            "rp": {"type": "runpod", "endpoint_url": fake.endpoint_url, "api_key": fake.api_key}
        }
    }
    config = load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
    )
    try:
        async with aiohttp.ClientSession() as session:
            runtime = Runtime(config, session)
            warm_ups = start_warm_ups(runtime, err=io.StringIO()) if warm else []
            await asyncio.sleep(typing_s)  # the user types the first prompt
            started = time.perf_counter()
            served = await runtime.router.open_stream(
                dict(_PROMPT), RequestOptions(request_id="bench-warm-start")
            )
            stream = served.result
            async for _event in stream:
                pass
            waited = time.perf_counter() - started
            await asyncio.gather(*warm_ups, return_exceptions=True)
            await runtime.factory.aclose()
    finally:
        await fake.close()
    return waited


async def measure(cold_start_s: float, typing_s: float) -> dict[str, float]:
    cold, warm = await asyncio.gather(
        first_prompt_wait(cold_start_s, typing_s, warm=False),
        first_prompt_wait(cold_start_s, typing_s, warm=True),
    )
    return {"cold_s": cold, "warm_s": warm, "saving_s": cold - warm}


def rows(quick: bool, shape: tuple[float, float] | None = None) -> list[Row]:
    cold_start_s, typing_s = shape or (QUICK if quick else FULL)
    figures = asyncio.run(measure(cold_start_s, typing_s))
    expected = min(typing_s, cold_start_s)
    saving = figures["saving_s"]
    return [
        Row(
            f"first prompt wait, no warm-up ({cold_start_s:g} s cold start)",
            figures["cold_s"],
            "s",
        ),
        Row(f"first prompt wait, warmed at start ({typing_s:g} s typing)", figures["warm_s"], "s"),
        Row(
            "warm-start saving / typing time",
            saving / expected,
            "ratio",
            ">= 0.9",
            saving >= 0.9 * expected,
        ),
    ]
