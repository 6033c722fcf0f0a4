"""HTTP mode's Anthropic routes (a pod, a load-balanced endpoint), read as Claude Code and the
official SDK read them; and the ports answering "starting" while the worker boots."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings
from ccrelay_wire.sse import SSEDecoder
from ccrelay_worker.http_server import build_app
from ccrelay_worker.starting import Listeners, StartingFace
from tests.conftest import free_port
from tests.stream_check import check_stream

KEY = "sk-worker-messages-key"
REQUEST: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "hello pod"}],
}


@pytest.fixture
async def service(redis_server: Any, ollama_server: Any) -> AsyncIterator[ChatService]:
    settings = HandlerSettings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "OLLAMA_HOST": ollama_server.url,
            "OLLAMA_CONTEXT_LENGTH": "4096",
        }
    )
    svc = ChatService(settings)
    try:
        yield svc
    finally:
        await svc.aclose()


@pytest.fixture
async def client(service: ChatService) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(service, KEY))) as test_client:
        yield test_client


def sse_events(text: str) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    return [json.loads(e.data) for e in [*decoder.feed(text.encode()), *decoder.flush()]]


async def test_claude_code_s_key_as_x_api_key_or_bearer(client: TestClient) -> None:
    for headers in ({"x-api-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        response = await client.post("/v1/messages", json=REQUEST, headers=headers)
        assert response.status == 200
        body = await response.json()
        assert body["content"] == [{"type": "text", "text": "Echo: hello pod"}]
    refused = await client.post("/v1/messages", json=REQUEST, headers={"x-api-key": "nope"})
    assert refused.status == 401
    assert (await refused.json())["error"]["type"] == "authentication_error"


async def test_the_official_sdk_streams_from_the_pod(client: TestClient) -> None:
    sdk = anthropic.AsyncAnthropic(
        base_url=str(client.make_url("")), api_key=KEY, _strict_response_validation=True
    )
    async with sdk, sdk.messages.stream(**REQUEST) as stream:
        events = [event.model_dump() async for event in stream if event.type in _RAW]
        message = await stream.get_final_message()
    assert message.content[0].text == "Echo: hello pod"
    assert events[0]["type"] == "message_start"


_RAW = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}


async def test_a_stream_carries_the_verdict_as_a_header_and_is_a_valid_stream(
    client: TestClient,
) -> None:
    headers = {"x-api-key": KEY}
    first = await client.post("/v1/messages", json={**REQUEST, "stream": True}, headers=headers)
    assert first.headers["x-ccrelay-cache"] == "miss"
    assert first.headers["Content-Type"].startswith("text/event-stream")
    check_stream(sse_events(await first.text()))
    again = await client.post("/v1/messages", json={**REQUEST, "stream": True}, headers=headers)
    assert again.headers["x-ccrelay-cache"] == "hit"


async def test_a_prompt_over_the_window_is_a_400_in_claude_code_s_words(
    client: TestClient,
) -> None:
    long = {**REQUEST, "messages": [{"role": "user", "content": "word " * 8000}], "stream": True}
    response = await client.post("/v1/messages", json=long, headers={"x-api-key": KEY})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("prompt is too long: ")


async def test_count_tokens(client: TestClient) -> None:
    body = {k: v for k, v in REQUEST.items() if k != "max_tokens"}
    response = await client.post("/v1/messages/count_tokens", json=body, headers={"x-api-key": KEY})
    assert response.status == 200
    assert (await response.json())["input_tokens"] > 0


async def test_ping_is_200_once_serving(client: TestClient) -> None:
    response = await client.get("/ping")
    assert response.status == 200


def _raw_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while data := conn.recv(4096):
            chunks.append(data)
    return b"".join(chunks)


async def test_while_booting_ping_is_204_and_the_rest_503_then_the_server_takes_over(
    service: ChatService,
) -> None:
    """RunPod's load balancer: 204 while initializing, 200 healthy (runpod/docs
    serverless/load-balancing). No connection is refused in the hand-over."""
    listeners = Listeners.bind("127.0.0.1", 0)
    port = listeners.service.getsockname()[1]
    face = StartingFace(listeners).start()
    try:
        ping = await asyncio.to_thread(_raw_get, port, "/ping")
        assert ping.startswith(b"HTTP/1.1 204")
        other = await asyncio.to_thread(_raw_get, port, "/v1/messages")
        assert other.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 10" in other and b"overloaded_error" in other
    finally:
        face.stop()
    # the real server on the same socket
    app = build_app(service)
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    server = await asyncio.get_running_loop().create_server(runner.server, sock=listeners.service)
    try:
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/ping") as r:
            assert r.status == 200
    finally:
        server.close()
        await runner.cleanup()
        listeners.close()


def test_a_second_health_port_answers_too() -> None:
    listeners = Listeners.bind("127.0.0.1", 0, free_port())
    assert listeners.health is not None
    health_port = listeners.health.getsockname()[1]
    face = StartingFace(listeners).start()
    try:
        assert _raw_get(health_port, "/ping").startswith(b"HTTP/1.1 204")
    finally:
        face.stop()
        listeners.close()
