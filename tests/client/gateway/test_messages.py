"""POST /v1/messages through the gateway to a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from ccrelay.backends.factory import load_client_config, new_session
from ccrelay.gateway import GatewayServer, build_app
from ccrelay.latency.observer import Attempt
from ccrelay.runtime import Runtime
from ccrelay_translate import anthropic_events_to_response
from tests.client.gateway.conftest import (
    BASH_TOOL,
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.providers import (
    FakeOpenAI,
    Reply,
    openai_completion,
    openai_text_chunks,
    openai_tool_chunks,
    sse,
)

ANTHROPIC_ONLY = (
    "thinking",
    "context_management",
    "output_config",
    "metadata",
    "cache_control",
    "defer_loading",
    "signature",
)


def claude_code_request() -> dict[str, Any]:
    """The awkward parts of what Claude Code 2.x sends."""
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "You help with software engineering tasks.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {
                        "type": "text",
                        "text": "List the files",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "use ls", "signature": "EqQBCkYIBxgC"},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.py"}],
            },
            {"role": "system", "content": "The user changed the working directory to /repo."},
        ],
        "tools": [
            BASH_TOOL,
            {**BASH_TOOL, "name": "mcp__docs__search", "defer_loading": True},
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_abc_account_123"},
    }


async def test_non_streamed_reply_in_anthropic_shape(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    response = await gateway.post("/v1/messages?beta=true", simple_request())
    body = await response.json()
    assert response.status == 200
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "Hello from fake"}]
    assert body["model"] == "fake-model"  # the backend model, not the Claude name asked for
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] == 11
    assert body["usage"]["output_tokens"] == 7
    headers = response.headers
    assert headers["x-ccrelay-backend"] == "openai"
    assert headers["x-ccrelay-model"] == "fake-model"
    assert headers["x-ccrelay-attempts"] == "1"
    assert headers["x-ccrelay-failovers"] == "0"
    assert headers["request-id"].startswith("req_")
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "fake-model"
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello"}]


async def test_non_streamed_tool_call(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "Bash", "arguments": '{"command": "echo hi"}'},
    }
    fake_openai.push(Reply(body=openai_completion("", tool_calls=[call])))
    response = await gateway.post("/v1/messages", simple_request(tools=[BASH_TOOL]))
    body = await response.json()
    assert response.status == 200
    assert body["stop_reason"] == "tool_use"
    tool_uses = [b for b in body["content"] if b["type"] == "tool_use"]
    assert tool_uses == [
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "echo hi"}}
    ]
    assert fake_openai.requests[-1].body["tools"][0]["function"]["name"] == "Bash"


async def test_streamed_text_event_order(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    status, events = await gateway.events(simple_request())
    assert status == 200
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(e["event"] == e["type"] for e in events)  # the SSE event name is the type
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Hello from fake"
    assert events[0]["message"]["model"] == "fake-model"
    assert fake_openai.requests[-1].body["stream"] is True


async def test_streamed_reply_carries_the_workers_cache_verdict(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    chunks = openai_text_chunks(["cached"])
    chunks[0] = {**chunks[0], "x_ccrelay_cache": "hit"}  # a ccrelay worker marks its first chunk
    fake_openai.push(Reply(headers={"Content-Type": "text/event-stream"}, chunks=sse(chunks)))
    async with await gateway.post("/v1/messages", {**simple_request(), "stream": True}) as response:
        assert response.status == 200
        assert response.headers["x-ccrelay-cache"] == "hit"
        body = await response.text()
    assert "x_ccrelay_cache" not in body  # the verdict is a header, never part of the events

    plain = await gateway.post("/v1/messages", {**simple_request(), "stream": True})
    assert "x-ccrelay-cache" not in plain.headers  # the fake's default stream reports none
    await plain.read()


async def test_streamed_tool_use_input_assembles(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    arguments = json.dumps({"command": "echo ccrelay", "description": "say it"})
    fake_openai.push(
        Reply(
            chunks=sse(
                openai_tool_chunks("Let me run it.", [("call_9", "Bash", arguments)]), done=True
            )
        )
    )
    status, events = await gateway.events(simple_request(tools=[BASH_TOOL]))
    assert status == 200
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    tool_index = starts[1]["index"]
    assert starts[1]["content_block"]["name"] == "Bash"
    pieces = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == tool_index
    ]
    assert len(pieces) == 1  # held until the call closes, so a broken one can be repaired
    assert json.loads("".join(pieces)) == json.loads(arguments)
    # every block is started, then stopped, in index order
    opened: list[int] = []
    for event in events:
        if event["type"] == "content_block_start":
            opened.append(event["index"])
        elif event["type"] == "content_block_stop":
            assert event["index"] == opened[-1]
    assert opened == [0, 1]
    message = anthropic_events_to_response(
        [{k: v for k, v in e.items() if k != "event"} for e in events]
    )
    assert message["stop_reason"] == "tool_use"
    assert message["content"][1]["input"] == json.loads(arguments)


async def test_claude_code_request_reaches_upstream_without_anthropic_fields(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    request = claude_code_request()
    response = await gateway.post(
        "/v1/messages?beta=true",
        request,
        headers={
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
            "context-management-2025-06-27",
            "x-app": "cli",
        },
    )
    assert response.status == 200, await response.text()
    sent = fake_openai.requests[-1]
    raw = json.dumps(sent.body)
    for field in ANTHROPIC_ONLY:
        assert field not in raw, field
    assert "anthropic-beta" not in {k.lower() for k in sent.headers}
    roles = [m["role"] for m in sent.body["messages"]]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "user",
    ]  # the late system text: a reminder
    assert sent.body["messages"][0]["content"].startswith("You are Claude Code")
    assert [t["function"]["name"] for t in sent.body["tools"]] == ["Bash", "mcp__docs__search"]
    # streamed too
    status, events = await gateway.events(request)
    assert status == 200
    assert events[-1]["type"] == "message_stop"
    assert "thinking" not in json.dumps(fake_openai.requests[-1].body)


async def test_model_map_picks_backend_model(fake_openai: FakeOpenAI) -> None:
    backend = openai_backend(
        fake_openai.base_url, models={"claude-*haiku*": "small-model", "claude-*": "big-model"}
    )
    async with running_gateway(config_env({"openai": backend})) as gateway:
        haiku = await gateway.post("/v1/messages", simple_request(model="claude-haiku-4-5"))
        sonnet = await gateway.post("/v1/messages", simple_request(model="claude-sonnet-4-5"))
        assert (await haiku.json())["model"] == "small-model"
        assert (await sonnet.json())["model"] == "big-model"
    assert [r.body["model"] for r in fake_openai.requests] == ["small-model", "big-model"]


async def test_failover_to_the_next_backend(fake_openai: FakeOpenAI) -> None:
    broken = await FakeOpenAI().start()
    try:
        broken.push(Reply(status=500, body={"error": {"message": "boom"}}))
        env = config_env(
            {
                "first": openai_backend(broken.base_url),
                "second": openai_backend(fake_openai.base_url),
            },
            active="first",
            fallback=["second"],
        )
        async with running_gateway(env) as gateway:
            response = await gateway.post("/v1/messages", simple_request())
            assert response.status == 200
            assert response.headers["x-ccrelay-backend"] == "second"
            assert response.headers["x-ccrelay-failovers"] == "1"
            # a backend may also be picked per request
            picked = await gateway.post(
                "/v1/messages", simple_request(), headers={"x-ccrelay-backend": "second"}
            )
            assert picked.headers["x-ccrelay-failovers"] == "0"
            unknown = await gateway.post(
                "/v1/messages", simple_request(), headers={"x-ccrelay-backend": "nope"}
            )
            assert unknown.status == 400
            assert "known backends: first, second" in (await unknown.json())["error"]["message"]
    finally:
        await broken.close()


async def test_twenty_concurrent_requests_all_succeed(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    """Half streamed, half not; the fake answers each in kind (its default replies)."""

    async def one(i: int) -> int:
        if i % 2:
            status, events = await gateway.events(simple_request())
            assert events[-1]["type"] == "message_stop"
            return status
        response = await gateway.post("/v1/messages", simple_request())
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
    assert statuses == [200] * 20, statuses
    assert len(fake_openai.requests) == 20


async def test_an_anthropic_stream_is_passed_through_byte_for_byte(fake_anthropic) -> None:
    """The pass-through writes Anthropic's events as they came: the deltas are not decoded
    and re-encoded (the spacing below would not survive orjson), yet the record has the usage."""
    events = [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
        b'"type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],'
        b'"stop_reason":null,"usage":{"input_tokens":120,"output_tokens":1}}}\n\n',
        b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0,'
        b' "content_block": {"type": "text", "text": ""}}\n\n',
        b'event: ping\ndata: {"type": "ping"}\n\n',
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,'
        b' "delta": {"type": "text_delta", "text": "Hi \\u00e9\\n"}}\n\n',
        b'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 0}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        b'"end_turn"},"usage":{"output_tokens":9}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    fake_anthropic.push(Reply(chunks=events))
    backend = {"type": "anthropic", "base_url": fake_anthropic.url, "api_key": "sk-ant-x"}
    seen = Attempts()
    runtime = Runtime(
        load_client_config(config_env({"anthropic": backend})), new_session(), observer=seen
    )
    server = GatewayServer(build_app(runtime))
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(server.url + "/v1/messages", json=simple_request(stream=True)) as response,
        ):
            body = await response.read()
    finally:
        await server.close()
        await runtime.aclose()
    assert response.status == 200
    assert body == b"".join(events)
    (attempt,) = seen.attempts
    assert (attempt.outcome, attempt.tokens_in, attempt.tokens_out) == ("ok", 120, 9)


class Attempts:
    """An `AttemptObserver` keeping what it is told."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
