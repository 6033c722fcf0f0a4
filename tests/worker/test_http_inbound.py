"""The worker's HTTP mode against slow, stalled and malformed callers (issue 25).

This face is meant to be reached over a network (pods, Vast.ai, load-balanced endpoints): it
runs here as the boot runs it (`_serve`, with a key and small ``CCRELAY_HTTP_*`` limits) in
front of the real redis-server and the fake Ollama; the callers are raw sockets
(tests/fuzz/slow_peers.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ccrelay_handler.settings import HandlerSettings
from ccrelay_wire.inbound import InboundLimits
from ccrelay_worker.errors import WorkerConfigError
from ccrelay_worker.http_server import _serve
from ccrelay_worker.settings import WorkerSettings, inbound_limits
from ccrelay_worker.stop_signals import StopSignals
from tests.conftest import free_port
from tests.fuzz.slow_peers import (
    PARTIAL_HEADERS,
    chunked_request,
    endless_chunks,
    open_files,
    peers,
    trickle,
)

KEY = "sk-worker-inbound-3Qb8"
BEARER = {"Authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "hello inbound"}]
FAST = InboundLimits(header_timeout_s=0.5, body_timeout_s=1.0, body_gap_s=0.4, idle_timeout_s=0.5)
WITHIN = 15.0  # bound on waiting for what the worker must do long before
ANSWER_WITHIN = 1.0  # the bar: /health and a real request while under the flood


class Worker:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    async def still_serves(self) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + "/health") as health:
                assert health.status == 200
            async with session.post(
                self.url + "/v1/chat/completions",
                json={"messages": MESSAGES, "cache": {"mode": "no-cache"}},
                headers=BEARER,
            ) as reply:
                assert reply.status == 200
                body = await reply.json()
        assert body["choices"][0]["message"]["content"] == "Echo: hello inbound"


async def serving(redis_server: Any, ollama_server: Any, limits: InboundLimits) -> Any:
    settings = HandlerSettings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "OLLAMA_HOST": ollama_server.url,
            "CCRELAY_WORKER_API_KEY": KEY,
        }
    )
    signals, port = StopSignals(), free_port()
    task = asyncio.create_task(_serve("127.0.0.1", port, settings, signals, 5.0, limits))
    for _ in range(250):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.02)
    return task, signals, Worker(port)


@pytest.fixture
def limits() -> InboundLimits:
    return FAST


@pytest.fixture
async def worker(
    redis_server: Any, ollama_server: Any, limits: InboundLimits
) -> AsyncIterator[Worker]:
    task, signals, running = await serving(redis_server, ollama_server, limits)
    try:
        yield running
    finally:
        signals._handle(signal.SIGTERM, None)  # what the kernel's SIGTERM runs
        await asyncio.wait_for(task, WITHIN)


def status_and_error(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


# -- a credential that is not UTF-8 -----------------------------------------------------------


async def test_a_credential_that_is_not_utf8_is_a_401_without_a_traceback(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    """It was a 500 (``str.encode`` of aiohttp's surrogates) and a traceback per request."""
    caplog.set_level(logging.DEBUG)
    async with peers(worker.port) as opened:
        peer = await opened.connect()
        await peer.send(
            b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer \xff\xfe\xc3(\x80key\r\n\r\n"
        )
        reply = await peer.closed(WITHIN)
    status, error = status_and_error(reply)
    assert status == 401
    assert error["code"] == "invalid_api_key"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    await worker.still_serves()


# -- slow callers -----------------------------------------------------------------------------


async def test_headers_trickled_byte_by_byte_are_closed_at_their_deadline(
    worker: Worker,
) -> None:
    async with peers(worker.port) as opened:
        peer = await opened.connect()
        sending = asyncio.create_task(trickle(peer, PARTIAL_HEADERS, every=0.02))
        reply = await peer.closed(WITHIN)
        assert await sending < len(PARTIAL_HEADERS), "cut while bytes kept coming"
    status, error = status_and_error(reply)
    assert status == 408
    assert error["code"] == "request_timeout"
    await worker.still_serves()


async def test_a_chunked_body_that_never_ends_is_cut_at_the_body_deadline(worker: Worker) -> None:
    async with peers(worker.port) as opened:
        peer = await opened.connect()
        await peer.send(chunked_request("/v1/chat/completions", BEARER))
        sending = asyncio.create_task(endless_chunks(peer, every=0.05))  # well inside the gap
        reply = await peer.closed(WITHIN)
        sending.cancel()
    status, error = status_and_error(reply)
    assert status == 408
    assert error["message"] == "the request body did not arrive within 1 s"
    await worker.still_serves()


async def test_a_body_whose_pieces_stop_is_cut_after_the_gap(worker: Worker) -> None:
    async with peers(worker.port) as opened:
        peer = await opened.connect()
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Length: 1000\r\n\r\n"
        )
        await peer.send(head.encode() + b'{"messages": [')
        reply = await peer.closed(WITHIN)
    status, error = status_and_error(reply)
    assert status == 408
    assert error["message"] == "the request body stalled: nothing arrived for 0.4 s"
    await worker.still_serves()


# -- a flood of stalled connections -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "limits",
    [
        InboundLimits(header_timeout_s=2.5, idle_timeout_s=2.5),  # the default cap closes most
        InboundLimits(header_timeout_s=2.5, idle_timeout_s=2.5, max_pending=4096),  # all open
    ],
    ids=["closed-by-the-cap", "all-open-closed-by-their-deadline"],
)
async def test_2000_stalled_connections_do_not_stop_http_mode(worker: Worker) -> None:
    with open_files(4500):
        async with peers(worker.port) as opened:
            stalled = await opened.stalled(2000)
            async with asyncio.timeout(ANSWER_WITHIN):
                await worker.still_serves()
            replies = await asyncio.gather(*(peer.closed(WITHIN) for peer in stalled))
    assert {r[:12] for r in replies} <= {b"", b"HTTP/1.1 408"}
    assert b"HTTP/1.1 408" in {r[:12] for r in replies}, "some waited out their deadline"


# -- settings ---------------------------------------------------------------------------------


def test_limits_come_from_the_environment() -> None:
    limits = inbound_limits(
        {
            "CCRELAY_HTTP_HEADER_TIMEOUT": "12",
            "CCRELAY_HTTP_BODY_TIMEOUT": "300",
            "CCRELAY_HTTP_BODY_GAP": "20.5",
            "CCRELAY_HTTP_IDLE_TIMEOUT": "650",
            "CCRELAY_HTTP_MAX_PENDING": "1000",
        }
    )
    assert limits == InboundLimits(12, 300, 20.5, 650, 1000)
    assert inbound_limits({}) == InboundLimits(idle_timeout_s=905)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("CCRELAY_HTTP_HEADER_TIMEOUT", "0", "must be greater than zero"),
        ("CCRELAY_HTTP_BODY_GAP", "soon", "is not a number"),
        ("CCRELAY_HTTP_MAX_PENDING", "12.5", "is not a whole number"),
    ],
)
def test_a_bad_limit_names_its_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(WorkerConfigError, match=problem) as caught:
        inbound_limits({name: value})
    assert name in str(caught.value)


def test_the_boot_settings_carry_the_limits(tmp_path: Any) -> None:
    settings = WorkerSettings.from_env(
        {"CCRELAY_VOLUME_ROOT": str(tmp_path), "CCRELAY_HTTP_IDLE_TIMEOUT": "620"}
    )
    assert settings.http_inbound.idle_timeout_s == 620
