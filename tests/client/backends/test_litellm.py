"""LiteLLM with its Redis cache in the middle (the seed's Vast.ai path): its verdict is seen.

LiteLLM marks a cache hit only with the ``x-litellm-cache-key`` header (absent on a miss, while
``x-litellm-version`` is always sent); see `tests.fakes.openai_compat.LiteLLMProfile`.
"""

from __future__ import annotations

import json

import pytest

from ccrelay.backends.types import RequestOptions
from tests.client.backends.test_profiles import build, request
from tests.client.cli.conftest import ccrelay, use_config
from tests.client.gateway.conftest import config_env, running_gateway, simple_request


@pytest.mark.parametrize("stream", [False, True])
async def test_a_litellm_cache_hit_is_reported(profiled, session, stream: bool) -> None:
    server = await profiled("litellm")
    backend = build(session, server, "openai", model="qwen3-coder")
    verdicts = []
    for _ in range(2):
        if stream:
            events = await backend.open_stream(request("same question"), RequestOptions())
            async for _event in events:
                pass
            verdicts.append(events.cache)
        else:
            verdicts.append(
                (await backend.complete(request("same question"), RequestOptions())).cache
            )
    assert verdicts == ["miss", "hit"]
    assert server.profile.upstream_calls == 1


async def test_the_gateway_says_hit_in_its_header(profiled) -> None:
    server = await profiled("litellm")
    env = config_env(
        {"vast": {"type": "openai", "base_url": server.base_url, "model": "qwen3-coder"}}
    )
    async with running_gateway(env) as gateway:
        headers = []
        for body in (simple_request(), simple_request(), simple_request(stream=True)):
            response = await gateway.post("/v1/messages", body)
            await response.read()
            headers.append(response.headers.get("x-ccrelay-cache"))
    assert headers == ["miss", "hit", "hit"]  # streamed and plain share LiteLLM's entry


async def test_the_second_identical_ask_is_served_from_the_cache_confirmed_by_logging(
    profiled, monkeypatch, capsys
) -> None:
    """The user story: 'a second, identical command is served from the Redis cache, confirmed
    by logging'."""
    server = await profiled("litellm")
    use_config(
        monkeypatch,
        {
            "backends": {
                "vast": {"type": "openai", "base_url": server.base_url, "model": "qwen3-coder"}
            }
        },
    )
    lines = []
    for _ in range(2):
        assert await ccrelay("ask", "what is a monad?") == 0
        lines.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert "cache=miss" in lines[0] and "cache=hit" in lines[1]
    assert server.profile.upstream_calls == 1
    assert await ccrelay("stats", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    (group,) = report["rows"]
    assert group["cache_hit_rate"] == pytest.approx(0.5)
