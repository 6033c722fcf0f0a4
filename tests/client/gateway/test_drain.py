"""A stopping gateway drains: in-flight requests finish, the rest end with an error (issue 13).

And requests aiohttp refuses before any route (headers too large, not HTTP) get Anthropic's
error shape without their bytes echoed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from ccrelay_wire.sse import SSEDecoder
from tests.client.gateway.conftest import (
    SECRET,
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.client.gateway.test_serve import base_env, spawn_serve, wait_ready
from tests.conftest import eventually, free_port
from tests.fakes.providers import FakeOpenAI, Reply, openai_completion, openai_text_chunks, sse

SLOW_TIMEOUTS = {"connect_s": 2, "first_byte_s": 10, "idle_s": 10, "total_s": 60}


def slow_stream(pieces: int, delay: float) -> Reply:
    return Reply(
        chunks=sse(openai_text_chunks([f"w{i} " for i in range(pieces)]), done=True),
        chunk_delay=delay,
    )


async def read_events(response: aiohttp.ClientResponse) -> list[dict]:
    decoder = SSEDecoder()
    events = decoder.feed(await response.read()) + decoder.flush()
    return [{"event": e.event, **json.loads(e.data)} for e in events]


async def test_sigterm_lets_a_short_stream_finish_and_ends_a_long_one_with_an_error_event(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    backend = openai_backend(fake_openai.base_url, timeouts=SLOW_TIMEOUTS)
    env = {
        **base_env(tmp_path),
        **config_env({"openai": backend}, gateway={"drain_s": 1.0}),
    }
    fake_openai.push(slow_stream(2, 0.05), slow_stream(200, 0.1))
    process = await spawn_serve(port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as client:
            await wait_ready(client, url + "/health", process)
            short = await client.post(url + "/v1/messages", json=simple_request(stream=True))
            long = await client.post(url + "/v1/messages", json=simple_request(stream=True))
            assert short.status == long.status == 200
            await long.content.readline()  # the long stream is under way
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            short_events, long_events = await asyncio.gather(read_events(short), read_events(long))
            await asyncio.wait_for(process.wait(), 10)
            elapsed = time.monotonic() - stopped_at
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert short_events[-1]["event"] == "message_stop"  # finished within drain_s
    assert long_events[-1]["event"] == "error"  # cut: an error event, never a silent end
    assert long_events[-1]["error"]["type"] == "overloaded_error"
    assert "shutting down" in long_events[-1]["error"]["message"]
    assert all(e["event"] != "message_stop" for e in long_events)
    assert process.returncode == 0
    assert elapsed < 1.0 + 3.0  # promptly after the drain time
    _, err = await process.communicate()
    assert "ended 1 request(s) still running" in err.decode()


async def test_a_non_streamed_request_past_the_drain_gets_529_that_may_be_retried(
    fake_openai: FakeOpenAI,
) -> None:
    env = config_env({"openai": openai_backend(fake_openai.base_url, timeouts=SLOW_TIMEOUTS)})
    fake_openai.push(Reply(body=openai_completion(), delay_before=5.0))
    async with running_gateway(env) as gateway:
        pending = asyncio.create_task(gateway.post("/v1/messages", simple_request()))
        await eventually(lambda: fake_openai.requests)
        ended = await gateway.server.drain(0.2)
        response = await pending
        body = await response.json()
    assert ended == 1
    assert response.status == 529
    assert response.headers["x-should-retry"] == "true"
    assert body["error"]["type"] == "overloaded_error"


async def test_requests_arriving_while_draining_are_refused_in_anthropic_shape(
    gateway: Gateway,
) -> None:
    from ccrelay.gateway.routes import STATE

    gateway.server.app[STATE].drain.stopping = True
    response = await gateway.post("/v1/messages", simple_request())
    assert response.status == 529
    assert (await response.json())["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("size", [9_000, 200_000])
async def test_a_header_over_the_limit_is_a_431_in_anthropic_shape_never_echoed(
    gateway: Gateway, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    secret_tail = "SECRETHEADERVALUE"
    value = "x" * size + secret_tail
    response = await gateway.client.post(
        gateway.url + "/v1/messages",
        json=simple_request(),
        headers={"x-custom": value, "x-api-key": "sk-" + secret_tail},
    )
    text = await response.text()
    assert response.status == 431
    assert json.loads(text)["error"]["type"] == "invalid_request_error"
    assert secret_tail not in text and "xxxxxxxx" not in text
    assert secret_tail not in caplog.text and "xxxxxxxx" not in caplog.text
    assert SECRET not in caplog.text


async def test_bytes_that_are_not_http_get_an_anthropic_400(gateway: Gateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x16\x03\x01 this is not http\r\n\r\n")
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert json.loads(body)["type"] == "error"
