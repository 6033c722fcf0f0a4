"""Allowlist refusal, engine errors with the engine's message, and cancellation storing nothing."""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import aclosing

import pytest
import redis

from ccrelay_handler.engine import OllamaEngine
from ccrelay_handler.errors import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ModelNotAllowed,
    PromptTooLong,
)
from ccrelay_handler.service import ChatService
from tests.conftest import free_port
from tests.fakes.ollama import ModelCard
from tests.fakes.openai_compat import Answer

from .helpers import cache_lines, chat


async def test_model_outside_the_allowlist_is_refused(service: ChatService, ollama_server) -> None:
    ollama_server.models.append("llama3:8b")  # present in Ollama, still not servable
    with pytest.raises(ModelNotAllowed) as info:
        await service.complete(chat("x", model="llama3:8b"))
    assert info.value.field == "model"
    assert "llama3:8b" in str(info.value) and "qwen3-coder:30b" in str(info.value)
    with pytest.raises(ModelNotAllowed):
        [c async for c in service.stream(chat("x", model="llama3:8b", stream=True))]
    assert ollama_server.chat_requests == []


async def test_allowlisted_model_is_served(make_settings, ollama_server) -> None:
    ollama_server.models.append("qwen3-coder:480b")
    service = ChatService(make_settings(CCRELAY_ALLOWED_MODELS="qwen3-coder:30b,qwen3-coder:480b"))
    try:
        result = await service.complete(chat("big", model="qwen3-coder:480b"))
    finally:
        await service.aclose()
    assert result["model"] == "qwen3-coder:480b"


async def test_engine_500_carries_the_engines_message(
    service: ChatService, ollama_server, redis_server
) -> None:
    ollama_server.fail = (500, "llama runner process has terminated: CUDA error")
    with pytest.raises(EngineError) as info:
        await service.complete(chat("boom"))
    assert info.value.status == 500
    assert (
        str(info.value)
        == "engine error (HTTP 500): llama runner process has terminated: CUDA error"
    )
    with pytest.raises(EngineError, match="CUDA error"):
        [c async for c in service.stream(chat("boom", stream=True))]
    assert redis.Redis.from_url(redis_server.url).keys("*") == []  # no entry, no lock left


async def test_engine_error_mid_stream_stores_nothing(
    service: ChatService, ollama_server, redis_server
) -> None:
    """Ollama reports an error after the first chunk only in its log: on the wire, one empty
    chunk with ``model: ""`` and the end of the stream (no finish chunk, no [DONE])."""
    ollama_server.fail_mid_stream = "out of memory"
    received = []
    with pytest.raises(EngineError, match="Ollama reported an error part way"):
        async for chunk in service.stream(chat("half", stream=True)):
            received.append(chunk)
    assert [c["model"] for c in received] == ["qwen3-coder:30b", ""]  # a word, then the error
    assert ollama_server.profile.server_log == ["out of memory"]
    assert redis.Redis.from_url(redis_server.url).keys("*") == []


async def test_a_prompt_over_llama_server_s_context_is_prompt_too_long(
    make_settings, ollama_server, redis_server
) -> None:
    """A GGUF model without an Ollama parser runs on llama-server's own template; a prompt
    that does not fit is llama-server's 400, which the handler words as Anthropic does."""
    ollama_server.add_model("custom-gguf:latest", ModelCard("custom-gguf", parser=None))
    ollama_server.profile.context_length = 100
    service = ChatService(make_settings(CCRELAY_ALLOWED_MODELS="qwen3-coder:30b,custom-gguf"))
    try:
        with pytest.raises(PromptTooLong) as info:
            await service.complete(chat("word " * 500, model="custom-gguf"))
        assert info.value.http_status == 400 and info.value.maximum == 100
        assert re.search(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)", str(info.value))
        with pytest.raises(PromptTooLong):
            [c async for c in service.stream(chat("word " * 500, model="custom-gguf", stream=True))]
        # the qwen3-coder renderer's path cuts the same prompt silently instead
        answer = await service.complete(chat("word " * 500))
    finally:
        await service.aclose()
    assert answer["usage"]["prompt_tokens"] == 100 - (100 - 4) // 2
    assert ollama_server.profile.truncated == 1
    assert redis.Redis.from_url(redis_server.url).keys("*") != []  # only the answer was stored


async def test_engine_unreachable_and_slow(ollama_server) -> None:
    unreachable = OllamaEngine(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EngineUnavailable):
        await unreachable.complete({"model": "m", "messages": []})
    await unreachable.aclose()

    ollama_server.delay = 1.0
    slow = OllamaEngine(ollama_server.url, read_timeout_s=0.1)
    with pytest.raises(EngineTimeout):
        await slow.complete(
            {"model": "qwen3-coder:30b", "messages": [{"role": "user", "content": "x"}]}
        )
    await slow.aclose()


async def test_cancelled_stream_stops_the_engine_and_stores_nothing(
    service: ChatService, ollama_server, redis_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    long = " ".join(f"word{i}" for i in range(50))
    ollama_server.responder = lambda _body: Answer(text=long)
    ollama_server.chunk_delay = 0.05
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in service.stream(chat("long story", stream=True)):
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):  # the fake notices the dropped connection on its next write
        if ollama_server.disconnects:
            break
        await asyncio.sleep(0.02)
    assert ollama_server.disconnects == 1
    assert redis.Redis.from_url(redis_server.url).keys("*") == []  # no entry, lock released
    assert "outcome=cancelled" in cache_lines(caplog)[-1]


async def test_stream_closed_early_stores_nothing(
    service: ChatService, ollama_server, redis_server
) -> None:
    ollama_server.responder = lambda _body: Answer(text="one two three four five")
    ollama_server.chunk_delay = 0.02
    async with aclosing(service.stream(chat("abandoned", stream=True))) as chunks:
        async for _ in chunks:
            break
    assert redis.Redis.from_url(redis_server.url).keys("*") == []


async def test_cancelled_completion_stores_nothing(
    service: ChatService, ollama_server, redis_server
) -> None:
    ollama_server.delay = 0.5
    task = asyncio.create_task(service.complete(chat("never mind")))
    await asyncio.sleep(0.1)
    assert redis.Redis.from_url(redis_server.url).keys("*")  # the lock is held meanwhile
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert redis.Redis.from_url(redis_server.url).keys("*") == []
    # and the next identical request is a plain miss, not stuck behind a lock
    ollama_server.delay = 0
    await asyncio.wait_for(service.complete(chat("never mind")), 2)
