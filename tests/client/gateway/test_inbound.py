"""The gateway's inbound limits (issue 25): slow and stalled callers are closed by their
deadline and cannot crowd out anyone else, token or no token; refusals stay short.

The gateway runs as `ccrelay serve` builds it (config ``gateway.inbound`` with small deadlines,
a token, 127.0.0.1); the abusive callers are raw sockets (tests/fuzz/slow_peers.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ccrelay.gateway.app import INBOUND
from ccrelay.gateway.validation import MAX_REFUSAL_CHARS
from tests.client.gateway.conftest import (
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.providers import FakeOpenAI
from tests.fuzz.slow_peers import (
    PARTIAL_HEADERS,
    chunked_request,
    endless_chunks,
    open_files,
    peers,
    trickle,
)

TOKEN = "gw-inbound-token-5Jc0qW"
AUTH = {"x-api-key": TOKEN}
FAST = {"header_timeout_s": 0.5, "body_timeout_s": 1.0, "body_gap_s": 0.4, "idle_timeout_s": 0.5}
WITHIN = 15.0  # bound on waiting for what the gateway must do long before
ANSWER_WITHIN = 1.0  # the bar: /health and a real request while under the flood


@pytest.fixture
async def gateway(fake_openai: FakeOpenAI) -> AsyncIterator[Gateway]:
    async with gateway_with(fake_openai, FAST) as running:
        yield running


def gateway_with(fake_openai: FakeOpenAI, inbound: dict[str, Any]) -> Any:
    env = config_env({"openai": openai_backend(fake_openai.base_url)}, gateway={"inbound": inbound})
    return running_gateway(env, auth_token=TOKEN)


def port_of(gateway: Gateway) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


def status_and_error(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


async def still_serves(gateway: Gateway) -> None:
    async with gateway.client.get(gateway.url + "/health", headers=AUTH) as health:
        assert health.status == 200
    reply = await gateway.post("/v1/messages", simple_request(), headers=AUTH)
    assert reply.status == 200
    assert (await reply.json())["type"] == "message"


# -- slow callers -----------------------------------------------------------------------------


async def test_headers_trickled_byte_by_byte_are_closed_at_their_deadline(
    gateway: Gateway,
) -> None:
    async with peers(port_of(gateway)) as opened:
        peer = await opened.connect()
        sending = asyncio.create_task(trickle(peer, PARTIAL_HEADERS, every=0.02))
        reply = await peer.closed(WITHIN)
        assert await sending < len(PARTIAL_HEADERS), "cut while bytes kept coming"
    status, error = status_and_error(reply)
    assert status == 408
    assert error == {
        "type": "invalid_request_error",
        "message": "the request's headers did not arrive in time; send them again",
    }
    await still_serves(gateway)


async def test_a_chunked_body_that_never_ends_is_cut_at_the_body_deadline(
    gateway: Gateway,
) -> None:
    async with peers(port_of(gateway)) as opened:
        peer = await opened.connect()
        await peer.send(chunked_request("/v1/messages", AUTH))
        sending = asyncio.create_task(endless_chunks(peer, every=0.05))  # well inside the gap
        reply = await peer.closed(WITHIN)
        sending.cancel()
    status, error = status_and_error(reply)
    assert status == 408
    assert error["message"] == "the request body did not arrive within 1 s"
    await still_serves(gateway)


async def test_a_body_whose_pieces_stop_is_cut_after_the_gap(gateway: Gateway) -> None:
    async with peers(port_of(gateway)) as opened:
        peer = await opened.connect()
        head = (
            "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"x-api-key: {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
        )
        await peer.send(head.encode() + b'{"model": "claude-sonnet-4-5", ')
        reply = await peer.closed(WITHIN)
    status, error = status_and_error(reply)
    assert status == 408
    assert error["message"] == "the request body stalled: nothing arrived for 0.4 s"
    await still_serves(gateway)


async def test_a_kept_alive_connection_is_closed_once_idle(gateway: Gateway) -> None:
    async with peers(port_of(gateway)) as opened:
        peer = await opened.connect()
        await peer.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(WITHIN):
            head = await peer.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" not in head, "kept alive"
        rest = await peer.closed(WITHIN)  # the body, then the idle timeout's close
        assert rest == b'{"service":"ccrelay","api":"anthropic-messages"}'


# -- a flood of stalled connections -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("max_pending", "closed_by"),
    [(256, "the cap (the default)"), (4096, "their deadline, all 2,000 open at once")],
)
async def test_2000_stalled_connections_do_not_stop_a_token_gateway(
    fake_openai: FakeOpenAI, max_pending: int, closed_by: str
) -> None:
    inbound = {"header_timeout_s": 2.5, "idle_timeout_s": 2.5, "max_pending": max_pending}
    with open_files(4500):
        async with (
            gateway_with(fake_openai, inbound) as gateway,
            peers(port_of(gateway)) as opened,
        ):
            stalled = await opened.stalled(2000)
            guard = gateway.server.app[INBOUND]
            assert guard.waiting == min(2000, max_pending), closed_by
            async with asyncio.timeout(ANSWER_WITHIN):
                await still_serves(gateway)
            replies = await asyncio.gather(*(peer.closed(WITHIN) for peer in stalled))
            assert guard.waiting == 0
    assert {r[:12] for r in replies} <= {b"", b"HTTP/1.1 408"}


# -- refusals echo little ----------------------------------------------------------------------

HUGE = "x" * 100_000


@pytest.mark.parametrize(
    "body",
    [
        {"model": "claude-sonnet-4-5", "max_tokens": HUGE, "messages": [{"role": "user"}]},
        {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": HUGE},
        {"model": [HUGE], "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {**simple_request(), "stream": HUGE},
    ],
    ids=["max_tokens", "messages", "model", "stream"],
)
async def test_validation_refusals_do_not_echo_a_huge_value(
    gateway: Gateway, body: dict[str, Any]
) -> None:
    reply = await gateway.post("/v1/messages", body, headers=AUTH)
    assert reply.status == 400
    message = (await reply.json())["error"]["message"]
    assert "x" * 41 not in message
    assert len(message) < 200


async def test_a_body_that_is_not_json_is_refused_without_echoing_it(gateway: Gateway) -> None:
    raw = ('{"model": "' + HUGE).encode()
    reply = await gateway.client.post(
        gateway.url + "/v1/messages", data=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert reply.status == 400
    message = (await reply.json())["error"]["message"]
    assert message.startswith("the request body is not valid JSON")
    assert "x" * 41 not in message


def role_request() -> dict[str, Any]:
    return {**simple_request(), "messages": [{"role": HUGE, "content": "hi"}]}


async def test_no_refusal_is_longer_than_the_gateways_bound(gateway: Gateway) -> None:
    """A 100 KB ``role`` made a 100 KB message (the translation quoted it whole)."""
    reply = await gateway.post("/v1/messages", role_request(), headers=AUTH)
    assert reply.status == 400
    message = (await reply.json())["error"]["message"]
    assert message.startswith("messages[0].role: unknown role")
    assert len(message) <= MAX_REFUSAL_CHARS


async def test_a_refusal_quotes_at_most_40_characters_of_a_value(gateway: Gateway) -> None:
    reply = await gateway.post("/v1/messages", role_request(), headers=AUTH)
    message = (await reply.json())["error"]["message"]
    assert "x" * 41 not in message
    assert "\u2026" in message
