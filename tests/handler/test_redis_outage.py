"""Redis down or slow: requests are served uncached with one warning, and caching comes back."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from ccrelay_handler.service import ChatService

from .helpers import cache_lines, chat


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ccrelay.handler" and r.levelno == logging.WARNING
    ]


async def test_redis_killed_mid_run_then_restarted(
    make_settings, ollama_server, redis_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    service = ChatService(make_settings(CCRELAY_REDIS_BACKOFF="0.2"))
    try:
        await service.complete(chat("before"))
        await service.complete(chat("before"))
        assert len(ollama_server.chat_requests) == 1

        redis_server.stop()
        started = time.monotonic()
        sequential = [await service.complete(chat(f"during {i}")) for i in range(5)]
        storm = await asyncio.gather(*(service.complete(chat(f"storm {i}")) for i in range(20)))
        for _ in range(3):
            await asyncio.sleep(0.25)  # past the back-off: Redis is tried again, still down
            await service.complete(chat("still down"))
        assert time.monotonic() - started < 5
        assert all(r["choices"] for r in sequential + storm)
        assert len(ollama_server.chat_requests) == 1 + 5 + 20 + 3  # uncached, every one ran
        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "serving uncached" in warnings[0]
        assert all("cache=bypass" in line for line in cache_lines(caplog)[2:])

        redis_server.start()
        await asyncio.sleep(0.25)  # let the back-off window end
        await service.complete(chat("after"))
        await service.complete(chat("after"))
        assert len(ollama_server.chat_requests) == 1 + 5 + 20 + 3 + 1
        lines = cache_lines(caplog)
        assert "cache=miss" in lines[-2] and "cache=hit" in lines[-1]
        assert any("redis available again" in r.getMessage() for r in caplog.records)
    finally:
        await service.aclose()


async def test_redis_down_streams_still_work(make_settings, ollama_server, redis_server) -> None:
    service = ChatService(make_settings())
    try:
        redis_server.stop()
        chunks = [c async for c in service.stream(chat("uncached stream", stream=True))]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text == "Echo: uncached stream"
    finally:
        await service.aclose()


async def test_in_process_coalescing_works_without_redis(
    make_settings, ollama_server, redis_server
) -> None:
    ollama_server.delay = 0.2
    service = ChatService(make_settings())
    try:
        redis_server.stop()
        await asyncio.gather(*(service.complete(chat("no redis, together")) for _ in range(10)))
    finally:
        await service.aclose()
    assert len(ollama_server.chat_requests) == 1


async def test_frozen_redis_costs_a_bounded_delay(
    make_settings, ollama_server, redis_server, caplog
) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP): bounded by the timeouts."""
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    service = ChatService(make_settings(CCRELAY_REDIS_BACKOFF="0.3"))
    assert redis_server.process is not None
    pid = redis_server.process.pid
    try:
        await service.complete(chat("warm the connection"))
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            result = await service.complete(chat("while frozen"))
            first = time.monotonic() - started
            started = time.monotonic()
            await asyncio.gather(*(service.complete(chat(f"frozen {i}")) for i in range(10)))
            storm = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert result["choices"][0]["message"]["content"] == "Echo: while frozen"
        assert first < 1.0  # 0.25 s command timeout (+ the request itself)
        assert storm < 0.5  # inside the back-off window: Redis is not even tried
        assert len(_warnings(caplog)) == 1

        await asyncio.sleep(0.35)
        await service.complete(chat("thawed"))
        await service.complete(chat("thawed"))
        assert "cache=hit" in cache_lines(caplog)[-1]
    finally:
        await service.aclose()
