"""The generic OpenAI-compatible backend (LiteLLM, vLLM, a RunPod pod) against a loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ccrelay.backends.factory import load_client_config
from ccrelay.backends.openai import OpenAIBackend, OpenAISettings
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import ProtocolError
from ccrelay.latency.observer import Attempt
from ccrelay_config.errors import ConfigValidationError
from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings
from ccrelay_worker.http_server import build_app
from tests.fakes.providers import FakeOpenAI, Reply, openai_completion, openai_text_chunks, sse

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


class Attempts:
    def __init__(self) -> None:
        self.seen: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.seen.append(attempt)


async def _drain(
    b: OpenAIBackend, request: dict[str, Any] = REQUEST
) -> tuple[str | None, list[dict[str, Any]]]:
    stream = await b.open_stream(request, RequestOptions(request_id="req_1"))
    cache = stream.cache  # known before the first event is passed on (the gateway's header)
    events = [event async for event in stream]
    assert stream.cache == cache
    return cache, events


@pytest.mark.parametrize("where", ["header", "first_chunk"])
async def test_stream_cache_verdict_from_the_worker(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession, where: str
) -> None:
    chunks = openai_text_chunks(["cached ", "answer"])
    headers = {"Content-Type": "text/event-stream"}
    if where == "header":
        headers["x-ccrelay-cache"] = "hit"
    else:
        chunks[0] = {**chunks[0], "x_ccrelay_cache": "hit"}
    fake_openai.push(Reply(headers=headers, chunks=sse(chunks, done=True)))
    observer = Attempts()
    b = backend(session, fake_openai)
    b.observer = observer
    cache, events = await _drain(b)
    assert cache == "hit"
    assert all(isinstance(e, dict) and "type" in e for e in events)  # the marker never leaks
    assert events[-1]["type"] == "message_stop"
    assert [(a.cache, a.streamed, a.outcome) for a in observer.seen] == [("hit", True, "ok")]


async def test_stream_without_a_verdict_reports_none(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    chunks = [{**openai_text_chunks(["x"])[0], "x_ccrelay_cache": "maybe"}]  # not a verdict
    chunks += openai_text_chunks(["x"])[1:]
    fake_openai.push(Reply(headers={"Content-Type": "text/event-stream"}, chunks=sse(chunks)))
    cache, events = await _drain(backend(session, fake_openai))
    assert cache is None
    assert events[-1]["type"] == "message_stop"


@pytest.fixture
async def worker_url(redis_server, ollama_server) -> AsyncIterator[str]:
    """The worker's HTTP mode (real ChatService, Redis and loopback Ollama) on 127.0.0.1."""
    settings = HandlerSettings.from_env(
        {"REDIS_URL": redis_server.url, "OLLAMA_HOST": ollama_server.url}
    )
    service = ChatService(settings)
    server = TestServer(build_app(service), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/v1"))
    finally:
        await server.close()
        await service.aclose()


async def test_stream_through_the_worker_http_mode_reports_miss_then_hit(
    worker_url: str, session: aiohttp.ClientSession, ollama_server
) -> None:
    settings = OpenAISettings.model_validate(
        {"type": "openai", "base_url": worker_url, "model": "qwen3-coder:30b"}
    )
    observer = Attempts()
    b = OpenAIBackend("worker", settings, session, observer=observer)
    verdicts = []
    for _ in range(2):
        cache, events = await _drain(b)
        verdicts.append(cache)
        text = "".join(
            e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta"
        )
        assert text == "Echo: hi"
    assert verdicts == ["miss", "hit"]
    assert [a.cache for a in observer.seen] == ["miss", "hit"]
    assert all(a.streamed and a.outcome == "ok" for a in observer.seen)
    assert len(ollama_server.chat_requests) == 1


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
