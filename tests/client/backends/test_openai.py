"""The generic OpenAI-compatible backend (LiteLLM, vLLM, a RunPod pod) against a loopback server."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from client.backend import RequestOptions
from client.backends.openai import OpenAIBackend, OpenAISettings
from client.errors import ProtocolError
from client.factory import load_client_config
from config.errors import ConfigValidationError
from tests.fake_providers import FakeOpenAI, Reply, openai_completion

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
}


def backend(session: aiohttp.ClientSession, fake: FakeOpenAI, **fields: Any) -> OpenAIBackend:
    settings = OpenAISettings.model_validate(
        {"type": "openai", "base_url": fake.base_url, **fields}
    )
    return OpenAIBackend("litellm", settings, session)


async def test_dummy_key_is_sent_as_bearer(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    await backend(session, fake_openai, api_key="dummy", model="qwen3-coder").complete(
        REQUEST, RequestOptions()
    )
    sent = fake_openai.requests[-1]
    assert sent.headers["Authorization"] == "Bearer dummy"
    assert sent.body["model"] == "qwen3-coder"
    # The generic backend keeps what OpenAI itself accepts.
    assert sent.body["parallel_tool_calls"] is False
    assert sent.body["tool_choice"] == "required"


async def test_no_key_sends_no_authorization(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    await backend(session, fake_openai).complete(REQUEST, RequestOptions())
    assert "Authorization" not in fake_openai.requests[-1].headers
    # With no model configured the requested name goes through (LiteLLM maps it itself).
    assert fake_openai.requests[-1].body["model"] == "claude-sonnet-4-5"


def test_base_url_is_required() -> None:
    with pytest.raises(ConfigValidationError) as caught:
        load_client_config(
            {
                "ENABLE_MULTI_BACKEND": "1",
                "LLM_BACKEND_CONFIG": '{"backends": {"litellm": {"type": "openai", "api_key": "dummy"}}}',
            }
        )
    assert "backends.litellm.base_url: Field required" in str(caught.value)


async def test_non_streamed_tool_call_reply(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "Read", "arguments": '{"path": "a.txt"}'},
    }
    fake_openai.push(Reply(body=openai_completion("", tool_calls=[call], usage=(40, 12))))
    completion = await backend(session, fake_openai).complete(REQUEST, RequestOptions())
    response = completion.response
    assert response["stop_reason"] == "tool_use"
    tool_use = next(b for b in response["content"] if b["type"] == "tool_use")
    assert tool_use["name"] == "Read"
    assert tool_use["input"] == {"path": "a.txt"}
    assert response["usage"] == {"input_tokens": 40, "output_tokens": 12}


async def test_cache_verdict_from_the_worker(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(Reply(body={**openai_completion(), "x_ccrelay_cache": "hit"}))
    completion = await backend(session, fake_openai).complete(REQUEST, RequestOptions())
    assert completion.cache == "hit"


async def test_models_reply_without_data_is_a_protocol_error(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(Reply(body={"models": []}))
    with pytest.raises(ProtocolError) as caught:
        await backend(session, fake_openai).list_models()
    assert "litellm" in str(caught.value)


async def test_health_reports_ok_and_failure(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    client = backend(session, fake_openai)
    report = await client.health()
    assert report.ok
    assert report.backend == "litellm"
    assert report.detail == "2 models"
    await fake_openai.close()
    report = await client.health()
    assert not report.ok
    assert "cannot connect" in report.detail
