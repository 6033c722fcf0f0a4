"""One real round trip per backend: plain, streamed, a tool call; RunPod must report a cache hit.

Run with `pytest tests/live -m live`; each test skips, saying why, without credentials.
"""

from __future__ import annotations

import uuid

import pytest

from ccrelay.backends.types import RequestOptions
from ccrelay.runtime import Runtime

pytestmark = pytest.mark.live
BACKENDS = ["cerebras", "runpod", "openai"]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _request(text: str, **extra: object) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def _options() -> RequestOptions:
    return RequestOptions(request_id=f"live_{uuid.uuid4().hex[:12]}")


@pytest.mark.parametrize("live_runtime", BACKENDS, indirect=True)
async def test_round_trip(live_runtime: Runtime) -> None:
    result = await live_runtime.router.complete(
        _request("Reply with the single word: pong", temperature=0), _options()
    )
    text = "".join(b.get("text", "") for b in result.result.response["content"])
    assert "pong" in text.lower()
    assert result.result.response["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("live_runtime", BACKENDS, indirect=True)
async def test_streamed(live_runtime: Runtime) -> None:
    served = await live_runtime.router.open_stream(_request("Count from 1 to 5."), _options())
    stream = served.result
    kinds = []
    text = ""
    async for event in stream:
        kinds.append(event["type"])
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            text += event["delta"]["text"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "3" in text
    assert stream.usage.get("output_tokens", 0) > 0, "streamed usage must be real, not 0"


@pytest.mark.parametrize("live_runtime", BACKENDS, indirect=True)
async def test_tool_call(live_runtime: Runtime) -> None:
    request = _request(
        "What is the weather in Paris? Use the tool.",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    result = await live_runtime.router.complete(request, _options())
    calls = [b for b in result.result.response["content"] if b["type"] == "tool_use"]
    assert result.result.response["stop_reason"] == "tool_use"
    assert calls and calls[0]["name"] == "get_weather"
    assert "paris" in str(calls[0]["input"]).lower()


@pytest.mark.parametrize("live_runtime", ["runpod"], indirect=True)
async def test_runpod_repeat_is_cache_hit(live_runtime: Runtime) -> None:
    request = _request(f"Say hello to run {uuid.uuid4().hex[:8]}", temperature=0)
    first = await live_runtime.router.complete(request, _options())
    second = await live_runtime.router.complete(request, _options())
    assert first.cache in ("miss", "hit")
    assert second.cache == "hit"
    assert second.result.response["content"] == first.result.response["content"]
