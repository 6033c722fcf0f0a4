"""Failover, end to end: a real gateway, a primary that fails, a secondary that serves.

Real loopback servers only: the primary is a fake OpenAI server that answers 503, is then
stopped (connections refused) and later started again on the same port; the secondary is a fake
Anthropic server. The breaker's cool-down is real time (0.5 s).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.client.gateway.conftest import (
    SECRET,
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply, openai_text_chunks, sse

COOLDOWN_S = 0.5


class Primary(FakeOpenAI):
    """A fake OpenAI server that can be stopped and started again on the same port."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self.port = port


def chain_env(primary: Primary, secondary: FakeAnthropic, threshold: int = 2) -> dict[str, str]:
    return config_env(
        {
            "primary": openai_backend(
                primary.base_url,
                retry={"max_attempts": 2, "initial_backoff_s": 0, "max_backoff_s": 0},
                circuit={"failure_threshold": threshold, "cooldown_s": COOLDOWN_S},
            ),
            "secondary": {
                "type": "anthropic",
                "base_url": secondary.url,
                "api_key": SECRET,
                "retry": {"max_attempts": 1},
            },
        },
        active="primary",
        fallback=["primary", "secondary"],
    )


async def ask(gateway: Gateway) -> tuple[dict[str, str], dict[str, Any]]:
    async with await gateway.post("/v1/messages", simple_request()) as response:
        body = await response.json()
        assert response.status == 200, body
        return dict(response.headers), body


async def circuits(gateway: Gateway) -> tuple[str, dict[str, str]]:
    async with gateway.client.get(gateway.url + "/health") as response:
        data = await response.json()
    return data["status"], {name: entry["circuit"] for name, entry in data["backends"].items()}


def served(headers: dict[str, str]) -> tuple[str, str, str]:
    return (
        headers["x-ccrelay-backend"],
        headers["x-ccrelay-attempts"],
        headers["x-ccrelay-failovers"],
    )


@pytest.fixture
async def primary() -> Any:
    server = await Primary().start()
    try:
        yield server
    finally:
        await server.close()


async def test_failover_opens_the_breaker_then_a_probe_closes_it(
    primary: Primary, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay")
    async with running_gateway(chain_env(primary, fake_anthropic)) as gateway:
        # 1. The primary answers 503 twice (both its attempts): the secondary serves.
        primary.push(Reply(status=503, body={"error": {"message": "overloaded"}}))
        primary.push(Reply(status=503, body={"error": {"message": "overloaded"}}))
        headers, body = await ask(gateway)
        assert served(headers) == ("secondary", "3", "1")  # 2 on the primary, 1 here
        assert body["content"][0]["text"]
        assert len(primary.requests) == 2
        assert len(fake_anthropic.requests) == 1
        assert await circuits(gateway) == ("ok", {"primary": "closed", "secondary": "closed"})

        # 2. The primary goes away (connections refused): its second failure opens the breaker.
        port = primary.port
        await primary.close()
        headers, _ = await ask(gateway)
        assert served(headers) == ("secondary", "3", "1")
        assert len(fake_anthropic.requests) == 2
        assert await circuits(gateway) == ("degraded", {"primary": "open", "secondary": "closed"})

        # 3. It is back at once, but the circuit is open: nothing is sent to it.
        revived = await Primary(port).start()
        try:
            seen = len(revived.requests)
            for _ in range(3):
                headers, _ = await ask(gateway)
                assert served(headers) == ("secondary", "1", "1")
            assert len(revived.requests) == seen == 0
            assert len(fake_anthropic.requests) == 5

            # 4. After the cool-down one probe goes to the primary; it answers; the circuit closes.
            await asyncio.sleep(COOLDOWN_S + 0.1)
            headers, _ = await ask(gateway)
            assert served(headers) == ("primary", "1", "0")
            assert len(revived.requests) == 1
            assert await circuits(gateway) == ("ok", {"primary": "closed", "secondary": "closed"})
            headers, _ = await ask(gateway)
            assert headers["x-ccrelay-backend"] == "primary"
            assert len(revived.requests) == 2
            assert len(fake_anthropic.requests) == 5
        finally:
            await revived.close()

    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ccrelay.gateway" and r.getMessage().startswith("POST ")
    ]
    assert len(lines) == 7
    assert (
        "POST /v1/messages 200 backend=secondary route=default attempts=3 failovers=1" in lines[0]
    )
    assert "POST /v1/messages 200 backend=primary route=default attempts=1 failovers=0" in lines[-1]
    assert all("request_id=req_" in line for line in lines)
    assert SECRET not in caplog.text


async def test_a_failed_probe_opens_the_circuit_again(
    primary: Primary, fake_anthropic: FakeAnthropic
) -> None:
    async with running_gateway(chain_env(primary, fake_anthropic, threshold=1)) as gateway:
        await primary.close()
        headers, _ = await ask(gateway)
        assert served(headers) == ("secondary", "3", "1")
        assert (await circuits(gateway))[1]["primary"] == "open"
        await asyncio.sleep(COOLDOWN_S + 0.1)
        headers, _ = await ask(gateway)  # the probe: refused again, the secondary serves
        assert served(headers) == ("secondary", "3", "1")
        assert (await circuits(gateway))[1]["primary"] == "open"
        assert len(fake_anthropic.requests) == 2


async def test_no_failover_once_a_stream_passed_its_first_event(
    primary: Primary, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay")
    chunks = openai_text_chunks(["Hello", " world"], model="fake-model")
    primary.push(Reply(chunks=sse(chunks[:2]), abort=True))  # role chunk, one delta, then gone
    async with running_gateway(chain_env(primary, fake_anthropic)) as gateway:
        async with gateway.client.post(
            gateway.url + "/v1/messages", json=simple_request(stream=True)
        ) as response:
            assert response.status == 200
            assert response.headers["x-ccrelay-backend"] == "primary"
            assert response.headers["x-ccrelay-failovers"] == "0"
        status, events = await gateway.events(simple_request())  # a second, intact stream
        assert status == 200
        assert events[-1]["event"] == "message_stop"

        primary.push(Reply(chunks=sse(chunks[:2]), abort=True))
        status, events = await gateway.events(simple_request())
    assert status == 200
    names = [event["event"] for event in events]
    assert names[0] == "message_start"
    assert names[-1] == "error"
    assert "message_stop" not in names
    assert events[-1]["error"]["type"]
    assert fake_anthropic.requests == []  # the secondary never saw the broken stream
    assert len(primary.requests) == 3
    assert any(
        "backend=primary" in r.getMessage() and "stream=error" in r.getMessage()
        for r in caplog.records
        if r.name == "ccrelay.gateway"
    )
