"""The same faults through the gateway: Anthropic error JSON with the right status and type
before a stream starts, an SSE `error` event (and no `message_stop`) once it has; 413 for an
oversized body and 400 for an invalid request without a call upstream. Every attempt is
recorded, and the key is in no reply, header or log line."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from ccrelay.gateway import GatewayServer, build_app
from ccrelay.gateway.errors import reply_status
from ccrelay.runtime import Runtime
from ccrelay_wire.sse import SSEDecoder
from tests.client.latency.helpers import RefusingPort
from tests.fakes.runpod_jobs import FakeRunPod
from tests.faults.helpers import (
    BOUND_S,
    KINDS,
    MID_STREAM,
    PRE_STREAM,
    REQUEST,
    SECRET,
    FaultServer,
    Records,
    Sleeps,
    Witness,
    expected,
    load,
    mid_stream_reply,
    pre_stream_reply,
    recorded,
    runpod_script,
    stall_for,
)

MAX_BODY = 64 * 1024


@asynccontextmanager
async def gateway(kind: str, url: str, **fields: Any) -> AsyncIterator[tuple[str, Records]]:
    records = Records()
    async with aiohttp.ClientSession() as session:
        runtime = Runtime(load(kind, url, **fields), session, observer=records, sleep=Sleeps())
        server = GatewayServer(build_app(runtime, max_body=MAX_BODY))
        await server.start()
        try:
            yield server.url, records
        finally:
            await server.close()
            await runtime.factory.aclose()


class Reply:
    """What the gateway answered, all of it kept as text for the key search."""

    def __init__(self, status: int, headers: CIMultiDict[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        return json.dumps(list(self.headers.items())) + self.body.decode("utf-8", "replace")

    def error(self) -> dict[str, Any]:
        payload = json.loads(self.body)
        assert payload["type"] == "error" and payload["request_id"].startswith("req_")
        return dict(payload["error"])

    def events(self) -> list[dict[str, Any]]:
        decoder = SSEDecoder()
        return [
            {"event": e.event, **json.loads(e.data)}
            for e in decoder.feed(self.body) + decoder.flush()
        ]


async def post(url: str, body: Any, *, raw: bytes | None = None) -> Reply:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            url + "/v1/messages",
            data=raw if raw is not None else json.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        reply = Reply(response.status, response.headers.copy(), await response.read())
    assert time.monotonic() - started < BOUND_S
    return reply


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", PRE_STREAM)
@pytest.mark.parametrize("kind", KINDS)
async def test_fault_before_the_reply_is_an_anthropic_error(
    kind: str, fault: str, stream: bool, fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    call = "open_stream" if stream else "complete"
    refusing = RefusingPort() if fault == "refused" else None
    url = refusing.url if refusing is not None else fault_server.url
    if refusing is None:
        fault_server.push(*(pre_stream_reply(fault, stall_for(kind, call)) for _ in range(2)))
    try:
        async with gateway(kind, url) as (gateway_url, records):
            reply = await post(gateway_url, {**REQUEST, "stream": stream})
    finally:
        if refusing is not None:
            refusing.close()

    error_class, attempts = expected(kind, fault, call)
    assert (reply.status, reply.error()["type"]) == reply_status(error_class)
    assert reply.headers["x-should-retry"] == "false"  # the gateway has spent the retries
    assert reply.headers["Content-Type"].startswith("application/json")
    if fault == "429":
        assert reply.headers["retry-after"] == "1" and reply.headers["retry-after-ms"] == "10"
    assert records.outcomes() == [(n, error_class.outcome) for n in range(1, attempts + 1)]
    witness = Witness()
    witness.add(reply.text(), records.attempts)
    witness.assert_clean(caplog)


@pytest.mark.parametrize("fault", MID_STREAM)
@pytest.mark.parametrize("kind", KINDS)
async def test_fault_mid_stream_ends_with_an_error_event(
    kind: str, fault: str, fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    runpod = None
    fields: dict[str, Any] = {}
    url = fault_server.url
    if kind == "runpod_poll":
        runpod = await FakeRunPod(api_key=SECRET).start()
        runpod.push_job(runpod_script(fault))
        url, fields = runpod.url, {"endpoint_url": runpod.endpoint_url}
    else:
        fault_server.push(mid_stream_reply(kind, fault))
    try:
        async with gateway(kind, url, **fields) as (gateway_url, records):
            reply = await post(gateway_url, {**REQUEST, "stream": True})
    finally:
        if runpod is not None:
            await runpod.close()

    assert reply.status == 200
    events = reply.events()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "error", kinds
    assert "message_stop" not in kinds
    assert events[-1]["error"]["type"] == "api_error" and events[-1]["error"]["message"]
    assert records.outcomes() == [(1, recorded(kind, fault).outcome)]
    witness = Witness()
    witness.add(reply.text(), records.attempts)
    witness.assert_clean(caplog)


@pytest.mark.parametrize("kind", KINDS)
async def test_oversized_and_invalid_requests_never_reach_the_backend(
    kind: str, fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    huge = {**REQUEST, "messages": [{"role": "user", "content": "x" * (2 * MAX_BODY)}]}
    invalid: list[Any] = [
        {"model": "claude-sonnet-4-5", "max_tokens": 64},  # no messages
        {**REQUEST, "max_tokens": "many"},
        {**REQUEST, "messages": "hi"},
    ]
    witness = Witness()
    async with gateway(kind, fault_server.url) as (gateway_url, records):
        too_big = await post(gateway_url, huge)
        assert too_big.status == 413
        assert too_big.error()["type"] == "request_too_large"
        for body in invalid:
            reply = await post(gateway_url, body)
            assert reply.status == 400, body
            assert reply.error()["type"] == "invalid_request_error"
            witness.add(reply.text())
        for raw in (b"{not json", b"[1, 2]", b""):
            reply = await post(gateway_url, None, raw=raw)
            assert reply.status == 400, raw
            assert reply.error()["type"] == "invalid_request_error"
            witness.add(reply.text())
    assert fault_server.requests == []
    assert records.attempts == []
    witness.add(too_big.text())
    witness.assert_clean(caplog)
