"""The Cerebras backend (OpenAI chat completions) against a loopback server."""

from __future__ import annotations

from typing import Any

import aiohttp

from ccrelay.backends.cerebras import CerebrasBackend, CerebrasSettings
from ccrelay.backends.registry import BackendRegistry
from ccrelay.backends.types import RequestOptions
from tests.fakes.providers import FakeOpenAI, Reply, openai_text_chunks, openai_tool_chunks, sse

KEY = "csk-test-SECRET-123456"

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 8000,
    "messages": [{"role": "user", "content": "hi"}],
}

TOOLS_REQUEST: dict[str, Any] = {
    **REQUEST,
    "tools": [
        {
            "name": "Read",
            "description": "read a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
}


def backend(session: aiohttp.ClientSession, fake: FakeOpenAI, **fields: Any) -> CerebrasBackend:
    settings = CerebrasSettings.model_validate(
        {
            "type": "cerebras",
            "base_url": fake.base_url,
            "api_key": KEY,
            "model": "gpt-oss-120b",
            **fields,
        }
    )
    return CerebrasBackend("cerebras", settings, session)


def test_registered_under_its_type() -> None:
    assert BackendRegistry().backend_class("cerebras") is CerebrasBackend


async def test_default_base_url_and_model(session: aiohttp.ClientSession) -> None:
    settings = CerebrasSettings(type="cerebras", api_key=KEY)  # type: ignore[arg-type]
    assert settings.base_url == "https://api.cerebras.ai/v1"
    client = CerebrasBackend("cerebras", settings, session)
    assert client.upstream.url("/chat/completions") == "https://api.cerebras.ai/v1/chat/completions"
    assert settings.model is None  # picked from GET /models (see test_profiles.py)
    assert client.discovers_model


async def test_bearer_key_and_overridden_base_url(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    completion = await backend(session, fake_openai, headers={"X-Team": "t1"}).complete(
        REQUEST, RequestOptions()
    )
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["X-Team"] == "t1"
    assert sent.body["model"] == "gpt-oss-120b"
    assert sent.body["stream"] is False
    assert "stream_options" not in sent.body
    assert completion.response["content"] == [{"type": "text", "text": "Hello from fake"}]
    assert completion.response["usage"] == {"input_tokens": 11, "output_tokens": 7}


async def test_model_from_config_and_wildcard_map(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    client = backend(
        session,
        fake_openai,
        model="gpt-oss-120b",
        models={"claude-*haiku*": "qwen-3-32b", "claude-opus-*": "qwen-3-235b"},
    )
    for asked, expected in [
        ("claude-3-5-haiku-20241022", "qwen-3-32b"),
        ("claude-haiku-4-5", "qwen-3-32b"),
        ("claude-opus-4-1", "qwen-3-235b"),
        ("claude-sonnet-4-5", "gpt-oss-120b"),
    ]:
        completion = await client.complete({**REQUEST, "model": asked}, RequestOptions())
        assert fake_openai.requests[-1].body["model"] == expected
        assert completion.model == expected
    override = RequestOptions(model_override="llama-4")
    await client.complete(REQUEST, override)
    assert fake_openai.requests[-1].body["model"] == "llama-4"


async def test_drops_parallel_tool_calls_and_configured_params(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    client = backend(session, fake_openai, drop_params=["tool_choice"], max_tokens_limit=4096)
    await client.complete({**TOOLS_REQUEST, "temperature": 0.2}, RequestOptions())
    body = fake_openai.requests[-1].body
    assert "parallel_tool_calls" not in body
    assert "tool_choice" not in body
    assert body["tools"][0]["function"]["name"] == "Read"
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 0.2


async def test_stream_asks_for_usage_and_real_counts_reach_message_delta(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(
        Reply(chunks=sse(openai_text_chunks(["Hel", "lo"], usage=(1234, 56)), done=True))
    )
    stream = await backend(session, fake_openai).open_stream(REQUEST, RequestOptions())
    events = [event async for event in stream]
    body = fake_openai.requests[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["usage"]["output_tokens"] == 56
    assert delta["usage"]["input_tokens"] == 1234
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert events[-1] == {"type": "message_stop"}
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Hello"
    assert stream.usage["output_tokens"] == 56
    assert stream.usage["input_tokens"] == 1234


async def test_stream_usage_can_be_turned_off(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["Hi"], usage=None), done=True)))
    stream = await backend(session, fake_openai, stream_usage=False).open_stream(
        REQUEST, RequestOptions()
    )
    events = [event async for event in stream]
    assert "stream_options" not in fake_openai.requests[-1].body
    assert events[-1] == {"type": "message_stop"}


async def test_streamed_tool_calls_become_tool_use_blocks(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    chunks = openai_tool_chunks("Reading.", [("call_1", "Read", '{"path": "/etc/hosts"}')])
    fake_openai.push(Reply(chunks=sse(chunks, done=True)))
    stream = await backend(session, fake_openai).open_stream(TOOLS_REQUEST, RequestOptions())
    events = [event async for event in stream]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[0]["type"] == "text"
    assert starts[1]["type"] == "tool_use"
    assert starts[1]["name"] == "Read"
    partial = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert partial == '{"path": "/etc/hosts"}'
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert "parallel_tool_calls" not in fake_openai.requests[-1].body


async def test_list_models(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    models = await backend(session, fake_openai).list_models()
    assert [m.id for m in models] == ["fake-model", "gpt-oss-120b"]
    assert models[0].owned_by == "fake"
    sent = fake_openai.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
