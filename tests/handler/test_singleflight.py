"""Identical requests arriving together run inference once: in one process and across workers."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis

from ccrelay_handler.service import ChatService
from tests.conftest import eventually

from .helpers import cache_lines, chat


async def test_ten_concurrent_identical_requests_run_once(
    service: ChatService, ollama_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    ollama_server.delay = 0.2
    results = await asyncio.gather(*(service.complete(chat("together")) for _ in range(10)))
    assert len(ollama_server.chat_requests) == 1
    assert all(r == results[0] for r in results)
    assert results[1] is not results[0]  # every caller gets its own copy
    lines = cache_lines(caplog)
    assert sum("cache=miss" in line for line in lines) == 1
    assert sum("cache=hit" in line and "coalesced=true" in line for line in lines) == 9


async def test_streams_and_plain_requests_coalesce_together(
    service: ChatService, ollama_server
) -> None:
    ollama_server.delay = 0.2

    async def streamed() -> str:
        chunks = [c async for c in service.stream(chat("mixed", stream=True))]
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )

    async def plain() -> str:
        return (await service.complete(chat("mixed")))["choices"][0]["message"]["content"]

    texts = await asyncio.gather(*(streamed() if i % 2 else plain() for i in range(10)))
    assert set(texts) == {"Echo: mixed"}
    assert len(ollama_server.chat_requests) == 1


async def test_two_workers_sharing_redis_run_once(make_settings, ollama_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    ollama_server.delay = 0.2
    worker_a, worker_b = ChatService(make_settings()), ChatService(make_settings())
    try:
        results = await asyncio.gather(
            *(w.complete(chat("shared")) for _ in range(5) for w in (worker_a, worker_b))
        )
    finally:
        await worker_a.aclose()
        await worker_b.aclose()
    assert len(results) == 10 and all(r == results[0] for r in results)
    assert len(ollama_server.chat_requests) == 1
    assert sum("cache=miss" in line for line in cache_lines(caplog)) == 1


async def test_lock_is_released_after_the_run(service: ChatService, redis_server) -> None:
    await service.complete(chat("released"))
    key = service.cache_key(chat("released"))
    client = redis.Redis.from_url(redis_server.url)
    assert client.exists(f"{key}:lock") == 0
    assert client.exists(key) == 1
    client.close()


async def test_dead_holder_releases_by_expiry(
    service: ChatService, ollama_server, redis_server
) -> None:
    key = service.cache_key(chat("orphan"))
    client = redis.Redis.from_url(redis_server.url)
    client.set(f"{key}:lock", "token-of-a-dead-worker", px=300)
    client.close()
    started = time.monotonic()
    result = await service.complete(chat("orphan"))
    waited = time.monotonic() - started
    assert result["choices"][0]["message"]["content"] == "Echo: orphan"
    assert 0.25 < waited < 2.0
    assert len(ollama_server.chat_requests) == 1


async def test_wait_is_bounded_then_runs_itself(make_settings, ollama_server, redis_server) -> None:
    service = ChatService(make_settings(CCRELAY_LOCK_WAIT="0.3"))
    try:
        key = service.cache_key(chat("stuck"))
        client = redis.Redis.from_url(redis_server.url)
        client.set(f"{key}:lock", "held-forever", px=60_000)
        started = time.monotonic()
        await service.complete(chat("stuck"))
        assert 0.25 < time.monotonic() - started < 2.0
        assert client.get(f"{key}:lock") == b"held-forever"  # never deletes another's lock
        assert client.exists(key) == 1  # the result is stored all the same
        client.close()
    finally:
        await service.aclose()
    assert len(ollama_server.chat_requests) == 1


async def test_follower_takes_over_when_the_leader_is_cancelled(
    service: ChatService, ollama_server
) -> None:
    ollama_server.delay = 0.3
    leader = asyncio.create_task(service.complete(chat("handover")))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(service.complete(chat("handover")))
    await asyncio.sleep(0.05)
    leader.cancel()
    result = await asyncio.wait_for(follower, 5)
    assert result["choices"][0]["message"]["content"] == "Echo: handover"
    assert leader.cancelled()
    assert len(ollama_server.chat_requests) == 2


async def test_remote_waiter_takes_over_when_the_holder_is_cancelled(
    make_settings, ollama_server
) -> None:
    ollama_server.delay = 0.3
    worker_a, worker_b = ChatService(make_settings()), ChatService(make_settings())
    try:
        holder = asyncio.create_task(worker_a.complete(chat("remote handover")))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(worker_b.complete(chat("remote handover")))
        await asyncio.sleep(0.05)
        holder.cancel()
        started = time.monotonic()
        await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - started < 1.5  # lock released at once, not at its 120 s expiry
    finally:
        await worker_a.aclose()
        await worker_b.aclose()
    assert len(ollama_server.chat_requests) == 2


async def test_followers_share_the_leaders_engine_error(
    service: ChatService, ollama_server
) -> None:
    ollama_server.delay = 0.1
    ollama_server.fail = (500, "model runner crashed")
    results = await asyncio.gather(
        *(service.complete(chat("doomed")) for _ in range(5)), return_exceptions=True
    )
    assert all("model runner crashed" in str(r) for r in results)
    assert len(ollama_server.chat_requests) == 1


def _renewal_tasks() -> list[asyncio.Task[object]]:
    """The single-flight lock renewal tasks still pending in this loop."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "") == "SingleFlight._renew"
    ]


async def test_holder_renews_its_lock_through_a_long_inference(
    make_settings, ollama_server, redis_server
) -> None:
    ollama_server.delay = 1.2  # four times the lock's lifetime
    worker_a = ChatService(make_settings(CCRELAY_LOCK_TTL="0.3"))
    worker_b = ChatService(make_settings(CCRELAY_LOCK_TTL="0.3"))
    client = redis.Redis.from_url(redis_server.url)
    tasks: list[asyncio.Task[dict[str, object]]] = []
    try:
        key = worker_a.cache_key(chat("long answer"))
        holder = asyncio.create_task(worker_a.complete(chat("long answer")))
        tasks.append(holder)
        await asyncio.sleep(0.1)
        token = client.get(f"{key}:lock")
        assert token is not None
        assert len(_renewal_tasks()) == 1
        duplicate = asyncio.create_task(worker_b.complete(chat("long answer")))
        tasks.append(duplicate)
        await asyncio.sleep(0.6)  # twice the lock's lifetime: only renewal keeps it
        assert client.get(f"{key}:lock") == token
        assert 0 < client.pttl(f"{key}:lock") <= 300
        first, second = await asyncio.wait_for(asyncio.gather(holder, duplicate), 5)
        assert first == second
        assert first["choices"][0]["message"]["content"] == "Echo: long answer"
        assert len(ollama_server.chat_requests) == 1  # the duplicate ran no inference
        assert _renewal_tasks() == []
        assert client.exists(f"{key}:lock") == 0
        assert client.exists(key) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client.close()
        await worker_a.aclose()
        await worker_b.aclose()


async def test_cancelled_holder_stops_renewing(make_settings, ollama_server, redis_server) -> None:
    ollama_server.delay = 0.7  # over before the test ends: no server task left pending
    service = ChatService(make_settings(CCRELAY_LOCK_TTL="0.3"))
    client = redis.Redis.from_url(redis_server.url)
    try:
        key = service.cache_key(chat("given up"))
        holder = asyncio.create_task(service.complete(chat("given up")))
        await asyncio.sleep(0.45)  # past the lock's first lifetime: renewed at least once
        assert client.exists(f"{key}:lock") == 1
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        assert _renewal_tasks() == []
        assert client.exists(f"{key}:lock") == 0
        await asyncio.sleep(0.4)  # past a renewal interval and the lock's lifetime
        assert client.exists(f"{key}:lock") == 0
        assert client.exists(key) == 0
    finally:
        client.close()
        await service.aclose()


async def test_renewal_survives_redis_going_away(
    make_settings, ollama_server, redis_server
) -> None:
    ollama_server.delay = 0.5
    service = ChatService(make_settings(CCRELAY_LOCK_TTL="0.3"))
    try:
        holder = asyncio.create_task(service.complete(chat("outage mid-run")))
        await asyncio.sleep(0.05)
        assert len(_renewal_tasks()) == 1
        redis_server.stop()  # renewals now fail: logged at debug, never raised
        result = await asyncio.wait_for(holder, 5)
        assert result["choices"][0]["message"]["content"] == "Echo: outage mid-run"
        assert _renewal_tasks() == []
    finally:
        redis_server.start()
        await service.aclose()


# -- streamed followers stream the leader's chunks as they are produced (issue 13, item 11) ----


async def _timed_text(service: ChatService, text: str) -> tuple[float, float, str]:
    """(time of the first content chunk, time of the end, the text) of one streamed request."""
    first = None
    pieces = []
    async for chunk in service.stream(chat(text, stream=True)):
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                first = first or time.monotonic()
                pieces.append(content)
    return first or 0.0, time.monotonic(), "".join(pieces)


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_streamed_duplicate_gets_chunks_before_the_leader_is_done(
    make_settings, ollama_server, caplog, workers: int
) -> None:
    """One worker (local relay) or two sharing Redis (a Redis stream): either way the duplicate
    streams the leader's chunks as they come, not the whole answer at the end."""
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    ollama_server.chunk_delay = 0.15
    text = "one two three four five six"
    services = [ChatService(make_settings()) for _ in range(workers)]
    try:
        leader = asyncio.create_task(_timed_text(services[0], text))
        await eventually(lambda: ollama_server.chat_requests, interval=0.005)
        await asyncio.sleep(0.2)  # the leader is under way
        follower = await _timed_text(services[-1], text)
        leader_result = await leader
    finally:
        for service in services:
            await service.aclose()
    assert len(ollama_server.chat_requests) == 1  # inference ran once
    assert follower[2] == leader_result[2] == f"Echo: {text}"
    assert follower[0] < leader_result[1] - 0.3  # its first chunk came well before the end
    lines = cache_lines(caplog)
    assert sum("cache=miss" in line for line in lines) == 1
    assert sum("cache=hit" in line and "coalesced=true" in line for line in lines) == 1


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_follower_whose_leader_fails_mid_stream_ends_with_an_error(
    make_settings, ollama_server, workers: int
) -> None:
    from ccrelay_handler.errors import EngineError

    ollama_server.chunk_delay = 0.2
    ollama_server.fail_mid_stream = "GPU fell off the bus"
    ollama_server.fail_after = 3  # a few chunks, then the engine fails
    services = [ChatService(make_settings()) for _ in range(workers)]
    try:
        leader = asyncio.create_task(_timed_text(services[0], "doomed answer here"))
        await asyncio.sleep(0.1)  # the leader has its first chunk, then fails
        with pytest.raises(EngineError):
            await _timed_text(services[-1], "doomed answer here")
        with pytest.raises(EngineError):
            await leader
    finally:
        for service in services:
            await service.aclose()
    assert len(ollama_server.chat_requests) == 1


async def test_the_duplicate_wait_stays_below_the_client_s_first_byte_deadline() -> None:
    """A duplicate that waits lock_wait_s for its first chunk must still beat the client's
    first_byte_s, or the client gives up just before it would have been served."""
    from ccrelay_config.models import TimeoutSettings
    from ccrelay_handler.settings import HandlerSettings

    assert HandlerSettings().lock_wait_s < TimeoutSettings().first_byte_s
