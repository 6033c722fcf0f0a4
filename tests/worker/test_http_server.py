"""The worker's HTTP mode: the same ChatService behind an OpenAI-compatible aiohttp app."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings
from ccrelay_worker.http_server import build_app
from ccrelay_worker.stop_signals import StopSignals
from tests.conftest import free_port
from tests.fakes.openai_compat import Answer

MESSAGES = [{"role": "user", "content": "hello http"}]
KEY = "sk-worker-test-key"


@pytest.fixture
async def service(redis_server, ollama_server) -> AsyncIterator[ChatService]:
    settings = HandlerSettings.from_env(
        {"REDIS_URL": redis_server.url, "OLLAMA_HOST": ollama_server.url}
    )
    svc = ChatService(settings)
    try:
        yield svc
    finally:
        await svc.aclose()


@pytest.fixture
async def client(service: ChatService) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(service))) as test_client:
        yield test_client


@pytest.fixture
async def authed(service: ChatService) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(service, KEY))) as test_client:
        yield test_client


def _events(body: str) -> list[str]:
    return [block.removeprefix("data: ") for block in body.split("\n\n") if block]


async def test_plain_completion_miss_then_hit(client: TestClient, ollama_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    bodies = []
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json={"messages": MESSAGES})
        assert response.status == 200
        bodies.append(await response.json())
    assert [b.pop("x_ccrelay_cache") for b in bodies] == ["miss", "hit"]
    assert bodies[0] == bodies[1]
    assert bodies[0]["choices"][0]["message"]["content"] == "Echo: hello http"
    assert len(ollama_server.chat_requests) == 1
    lines = [r.getMessage() for r in caplog.records if " cache=" in r.getMessage()]
    assert [line.split()[1] for line in lines] == ["cache=miss", "cache=hit"]


async def test_stream_is_openai_sse(client: TestClient, ollama_server) -> None:
    for _ in range(2):  # a miss streamed from the engine, then a hit replayed from the cache
        response = await client.post(
            "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = _events(await response.text())
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text == "Echo: hello http"
        assert chunks[-1]["usage"]["total_tokens"] > 0
    assert len(ollama_server.chat_requests) == 1


async def test_stream_reports_the_cache_verdict(client: TestClient, ollama_server) -> None:
    verdicts = []
    for _ in range(2):  # a miss, then a hit: as a header and on the first chunk only
        response = await client.post(
            "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
        )
        assert response.status == 200
        chunks = [json.loads(e) for e in _events(await response.text())[:-1]]
        assert chunks[0]["x_ccrelay_cache"] == response.headers["x-ccrelay-cache"]
        assert all("x_ccrelay_cache" not in c for c in chunks[1:])
        verdicts.append(response.headers["x-ccrelay-cache"])
    assert verdicts == ["miss", "hit"]
    assert len(ollama_server.chat_requests) == 1


async def test_models_and_health(client: TestClient) -> None:
    response = await client.get("/v1/models")
    assert response.status == 200
    assert [m["id"] for m in (await response.json())["data"]] == ["qwen3-coder:30b"]
    health = await client.get("/health")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"


async def test_auth_required_when_a_key_is_set(authed: TestClient, ollama_server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = await authed.post(
            "/v1/chat/completions", json={"messages": MESSAGES}, headers=headers
        )
        assert response.status == 401
        body = await response.json()
        assert body["error"]["code"] == "invalid_api_key"
        assert KEY not in json.dumps(body)
    assert (await authed.get("/v1/models")).status == 401
    assert (await authed.get("/health")).status == 200  # liveness stays open
    ok = await authed.post(
        "/v1/chat/completions",
        json={"messages": MESSAGES},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert ok.status == 200
    assert len(ollama_server.chat_requests) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"messages": [{"role": "robot", "content": "x"}]},
            400,
            "invalid_input",
            "messages[0].role",
        ),
        ({"messages": MESSAGES, "model": "llama3:8b"}, 400, "model_not_allowed", "model"),
        (
            {"messages": MESSAGES, "model": "llama3:8b", "stream": True},
            400,
            "model_not_allowed",
            "model",
        ),
    ],
)
async def test_request_errors_in_openai_shape(
    client: TestClient, body, status, code, param
) -> None:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == status
    error = (await response.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code and error["param"] == param


async def test_large_conversations_are_accepted(client: TestClient) -> None:
    big = [{"role": "user", "content": "x" * (3 * 1024 * 1024)}]  # over aiohttp's 1 MiB default
    body = io.BytesIO(json.dumps({"messages": big, "max_tokens": 5}).encode())
    response = await client.post(
        "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200


async def test_body_that_is_not_json(client: TestClient) -> None:
    response = await client.post("/v1/chat/completions", data=b"{not json")
    assert response.status == 400
    assert (await response.json())["error"]["param"] == "body"


@pytest.mark.parametrize("stream", [False, True])
async def test_engine_error_keeps_the_engines_message(
    client: TestClient, ollama_server, stream: bool
) -> None:
    ollama_server.fail = (500, "CUDA out of memory")
    response = await client.post(
        "/v1/chat/completions", json={"messages": MESSAGES, "stream": stream}
    )
    assert response.status == 502
    error = (await response.json())["error"]
    assert error["message"] == "engine error (HTTP 500): CUDA out of memory"
    assert error["type"] == "api_error" and error["code"] == "engine_error"


async def test_engine_error_mid_stream_is_a_final_error_event(
    client: TestClient, ollama_server
) -> None:
    ollama_server.fail_mid_stream = "runner crashed"  # Ollama logs it; the wire never says
    response = await client.post(
        "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
    )
    assert response.status == 200
    events = _events(await response.text())
    message = json.loads(events[-1])["error"]["message"]
    assert message.startswith("engine error: Ollama reported an error part way")
    assert "Ollama's log" in message
    assert "[DONE]" not in events


async def test_client_disconnect_mid_stream_stores_nothing(
    client: TestClient, ollama_server, redis_server
) -> None:
    long = " ".join(f"w{i}" for i in range(40))
    ollama_server.responder = lambda _body: Answer(text=long)
    ollama_server.chunk_delay = 0.03
    response = await client.post(
        "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
    )
    await response.content.readany()
    response.close()  # drop the connection mid-stream
    for _ in range(100):
        if ollama_server.disconnects:
            break
        await asyncio.sleep(0.02)
    assert ollama_server.disconnects == 1
    assert redis.Redis.from_url(redis_server.url).keys("*") == []


def test_run_serves_until_interrupted(redis_server, ollama_server, tmp_path: Path) -> None:
    """``run(host, port, settings)``, as the worker's boot calls it, in a child process."""
    port = free_port()
    script = (
        "import logging, os, sys; logging.basicConfig(level=logging.INFO); "
        "from ccrelay_handler.settings import HandlerSettings; "
        "from ccrelay_worker.http_server import run; "
        "run('127.0.0.1', int(sys.argv[1]), HandlerSettings.from_env(os.environ))"
    )
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "OLLAMA_HOST": ollama_server.url,
        "CCRELAY_WORKER_API_KEY": KEY,
    }
    log = (tmp_path / "http.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(port)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "http.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "HTTP mode never listened"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps({"messages": MESSAGES}).encode(),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        for _ in range(2):
            with urllib.request.urlopen(request, timeout=10) as response:
                assert (
                    json.loads(response.read())["choices"][0]["message"]["content"]
                    == "Echo: hello http"
                )
        assert len(ollama_server.chat_requests) == 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    output = (tmp_path / "http.log").read_text()
    assert KEY not in output
    assert "cache=hit" in output


# -- stopping: the worker's StopSignals drive the server (issue 16) ---------------------------


async def _serve_until(
    redis_server: object, ollama_server: object, drain_s: float
) -> tuple[asyncio.Task[None], int, StopSignals]:
    from ccrelay_worker.http_server import _serve

    settings = HandlerSettings.from_env(
        {"REDIS_URL": redis_server.url, "OLLAMA_HOST": ollama_server.url}  # type: ignore[attr-defined]
    )
    signals, port = StopSignals(), free_port()
    task = asyncio.create_task(_serve("127.0.0.1", port, settings, signals, drain_s))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    return task, port, signals


async def _chat(port: int) -> int:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"messages": MESSAGES, "cache": {"mode": "no-cache"}},
        ) as reply,
    ):
        await reply.read()
        return reply.status


async def test_sigterm_lets_the_request_in_flight_finish(redis_server, ollama_server) -> None:
    ollama_server.delay = 0.5  # a slow answer, still coming when the signal arrives
    task, port, signals = await _serve_until(redis_server, ollama_server, drain_s=5)
    in_flight = asyncio.create_task(_chat(port))
    await asyncio.sleep(0.2)
    signals._handle(signal.SIGTERM, None)  # what the kernel's SIGTERM runs
    assert await asyncio.wait_for(in_flight, 5) == 200, "drained, not cut"
    await asyncio.wait_for(task, 5)
    with pytest.raises(OSError):  # and it no longer listens
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_second_sigterm_ends_the_drain_at_once(redis_server, ollama_server) -> None:
    ollama_server.delay = 5.0
    task, port, signals = await _serve_until(redis_server, ollama_server, drain_s=30)
    in_flight = asyncio.create_task(_chat(port))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    signals._handle(signal.SIGTERM, None)
    await asyncio.sleep(0.2)
    signals._handle(signal.SIGTERM, None)
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 3, "the 30 s drain was cut short"
    in_flight.cancel()
