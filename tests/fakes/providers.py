"""Scripted fakes of OpenAI's chat completions and Anthropic's Messages API, and their bodies.

A test queues `Reply` objects; each request to the server pops the next one (or gets the default).
Every request is recorded (`Recorded`: method, path, headers, body) so tests can assert what
ccrelay sent. Served on 127.0.0.1 by tests/fakes/harness.py; used through the fixtures in
tests/conftest.py. The harness's `Recorded`, `Reply`, `sse` and `LoopbackServer` are importable
from here too: the tests that script these fakes use them together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.harness import LoopbackServer, Recorded, Reply, record, sse

__all__ = [
    "FakeAnthropic",
    "FakeOpenAI",
    "FakeProvider",
    "LoopbackServer",
    "Recorded",
    "Reply",
    "anthropic_message",
    "anthropic_text_events",
    "openai_completion",
    "openai_text_chunks",
    "openai_tool_chunks",
    "sse",
]


def openai_completion(
    text: str = "Hello from fake",
    *,
    model: str = "fake-model",
    tool_calls: list[dict] | None = None,
    usage: tuple[int, int] = (11, 7),
) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if tool_calls:
        message["tool_calls"] = tool_calls
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def openai_text_chunks(
    pieces: list[str],
    *,
    model: str = "fake-model",
    usage: tuple[int, int] | None = (11, 7),
    finish: str = "stop",
) -> list[dict]:
    base = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    for piece in pieces:
        chunks.append(
            {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        )
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        chunks.append(_openai_usage_chunk(base, usage))
    return chunks


def _openai_usage_chunk(base: dict[str, Any], usage: tuple[int, int]) -> dict[str, Any]:
    """The last chunk of a stream with `stream_options.include_usage`: no choices, the usage."""
    return {
        **base,
        "choices": [],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def openai_tool_chunks(
    text: str,
    calls: list[tuple[str, str, str]],
    *,
    model: str = "fake-model",
    usage: tuple[int, int] = (20, 9),
) -> list[dict]:
    """Text, then each (id, name, arguments JSON) tool call with its arguments in 3 pieces."""
    base = {"id": "chatcmpl-fake2", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
            ],
        }
    ]
    for index, (call_id, name, arguments) in enumerate(calls):
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": call_id,
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            ]
                        },
                        "finish_reason": None,
                    }
                ],
            }
        )
        third = max(1, len(arguments) // 3)
        for part in (arguments[:third], arguments[third : 2 * third], arguments[2 * third :]):
            chunks.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [{"index": index, "function": {"arguments": part}}]
                            },
                            "finish_reason": None,
                        }
                    ],
                }
            )
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append(_openai_usage_chunk(base, usage))
    return chunks


def anthropic_message(
    text: str = "Hello from fake Claude",
    *,
    model: str = "claude-sonnet-4-5",
    usage: tuple[int, int] = (12, 6),
) -> dict:
    return {
        "id": "msg_fake1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def anthropic_text_events(
    pieces: list[str], *, model: str = "claude-sonnet-4-5", usage: tuple[int, int] = (12, 6)
) -> tuple[list[dict], list[str]]:
    message = {
        **anthropic_message("", model=model, usage=(usage[0], 1)),
        "content": [],
        "stop_reason": None,
    }
    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": usage[1]},
        },
        {"type": "message_stop"},
    ]
    return events, [e["type"] for e in events]


class FakeProvider(LoopbackServer):
    """Base: a scripted aiohttp app. Subclasses add the protocol's routes and default replies."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self.queue: list[Reply] = []

    def push(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def default_reply(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def refusal(self, request: Recorded) -> Reply | None:
        """What the real service answers before anything else (a missing credential)."""
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await record(request)
        self.requests.append(recorded)
        refused = self.refusal(recorded)
        if refused is not None:
            reply = refused
        else:
            reply = self.queue.pop(0) if self.queue else self.default_reply(recorded)
        if reply.delay_before:
            await asyncio.sleep(reply.delay_before)
        if reply.abort and reply.chunks is None:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if reply.chunks is not None:
            response = web.StreamResponse(
                status=reply.status, headers={"Content-Type": "text/event-stream", **reply.headers}
            )
            await response.prepare(request)
            for piece in reply.chunks:
                await response.write(piece)
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
            if reply.stall_after_chunks:
                await asyncio.sleep(reply.stall_after_chunks)
            if reply.abort:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write_eof()
            return response
        if reply.raw is not None:
            return web.Response(status=reply.status, body=reply.raw, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


class FakeOpenAI(FakeProvider):
    """OpenAI chat completions (also Cerebras and LiteLLM) under /v1."""

    models = ["fake-model", "gpt-oss-120b"]

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/v1/chat/completions", self._handle)
        self.app.router.add_get("/v1/models", self._handle)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def default_reply(self, request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return Reply(
                body={
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models],
                }
            )
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model", "fake-model")
        if body.get("stream"):
            return Reply(
                chunks=sse(openai_text_chunks(["Hello", " from", " fake"], model=model), done=True)
            )
        return Reply(body=openai_completion(model=model))


class FakeAnthropic(FakeProvider):
    """Anthropic's Messages API."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/v1/messages", self._handle)
        self.app.router.add_post("/v1/messages/count_tokens", self._handle)
        self.app.router.add_get("/v1/models", self._handle)

    def refusal(self, request: Recorded) -> Reply | None:
        """Anthropic answers a request with neither ``x-api-key`` nor ``Authorization`` with
        401 ``authentication_error`` (its errors page; the message is the API's own)."""
        headers = {name.lower() for name in request.headers}
        if "x-api-key" in headers or "authorization" in headers:
            return None
        error = {"type": "authentication_error", "message": "x-api-key header is required"}
        return Reply(status=401, body={"type": "error", "error": error})

    def default_reply(self, request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return Reply(
                body={"data": [{"id": "claude-sonnet-4-5", "type": "model"}], "has_more": False}
            )
        if request.path.endswith("/count_tokens"):
            return Reply(body={"input_tokens": 42})
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model", "claude-sonnet-4-5")
        if body.get("stream"):
            events, names = anthropic_text_events(["Hello", " from", " Claude"], model=model)
            return Reply(chunks=sse(events, event_names=names))
        return Reply(body=anthropic_message(model=model))


ProviderFactory = Callable[[], FakeProvider]
