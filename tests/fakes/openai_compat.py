"""The OpenAI-compatible fake: one server, and a `Profile` per real service behind it.

A `ProfiledServer` speaks OpenAI's chat completions; its `Profile` decides everything a real
service does its own way, from that service's source or docs (cited on each profile): the ids
it gives, where reasoning goes, how a stream is laid out, what it refuses with which error,
what the model "sees" of the prompt (`ProfiledServer.seen_prompts`), and what happens on the
wire when generation fails half way. The plain `Profile` is OpenAI's own API; `VLLMProfile` and
`LiteLLMProfile` are here, Cerebras is tests/fakes/cerebras.py and Ollama tests/fakes/ollama/
(whose server is a `ProfiledServer` with Ollama's native API added).

A test says *what* the model answers (`Answer`: text, reasoning, tool calls), by queueing
answers (`push`) or with a `responder` function (default: echo the last user message); the
profile decides *how* it goes on the wire. Knobs any service can show: ``delay`` (seconds
before answering), ``chunk_delay`` (between streamed chunks), ``fail = (status, message)``
(answer every chat with that error), ``fail_mid_stream = message`` after ``fail_after``
chunks. ``recorded`` holds every request (`Recorded`); ``requests`` the chat bodies;
``disconnects`` counts streams the client dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.harness import LoopbackServer, Recorded, record

__all__ = [
    "Answer",
    "LiteLLMProfile",
    "Profile",
    "ProfiledServer",
    "Refusal",
    "VLLMProfile",
    "chars_to_tokens",
    "echo",
]

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Answer:
    """What the model says: its reasoning, its text, its tool calls ((name, arguments JSON)).

    ``finish`` is why generation stopped ("stop", or "length" when it ran out of tokens).
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish: str = "stop"


class Refusal(Exception):
    """The service refuses the request: ``status`` and the body it answers."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def chars_to_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def message_text(message: dict[str, Any]) -> str:
    """A message's text: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def echo(body: dict[str, Any]) -> Answer:
    """The default answer: ``Echo: <the last user message>`` (its first 200 characters)."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return Answer(text=f"Echo: {message_text(users[-1])[:200]}" if users else "Echo:")


def words(text: str) -> list[str]:
    """Text as a model streams it: a word and its trailing space per piece."""
    return re.findall(r"\S+\s*", text)


class Profile:
    """The generic OpenAI-compatible behaviour; each service overrides what it does its own way."""

    name = "openai"
    models: tuple[str, ...] = ("fake-model",)
    reasoning_field: str | None = "reasoning"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def completion_id(self) -> str:
        return f"chatcmpl-{uuid.uuid4().hex[:24]}"

    def tool_call_id(self, index: int) -> str:
        return f"call_{index}_{uuid.uuid4().hex[:6]}"

    def check(self, body: dict[str, Any]) -> None:
        """Raise `Refusal` for a request this service refuses."""
        model = body.get("model")
        if model not in self.models:
            raise Refusal(404, self.error(f"model {model!r} not found", "model_not_found"))

    def error(self, message: str, code: str | None = None, param: str | None = None) -> dict:
        return {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        }

    def status_error(self, status: int, message: str) -> dict[str, Any]:
        """The body of an error the service answers with HTTP ``status`` (the ``fail`` knob)."""
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def seen(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """(the transcript the model reads, its prompt tokens); may raise `Refusal`."""
        messages = body.get("messages") or []
        return messages, sum(chars_to_tokens(json.dumps(m)) for m in messages)

    def tool_call_pieces(self, arguments: str) -> list[str]:
        """How one tool call's arguments are split over stream chunks (OpenAI: in pieces)."""
        third = max(1, len(arguments) // 3)
        return [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]

    def lookup(self, body: dict[str, Any]) -> Answer | None:
        """A cached answer for this request (a caching proxy), or None."""
        return None

    def store(self, body: dict[str, Any], answer: Answer) -> None:
        """Remember an answer (a caching proxy)."""

    def headers(self, hit: bool) -> dict[str, str]:
        """Headers on every reply."""
        return {}

    def models_body(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1, "owned_by": self.name}
                for m in self.models
            ],
        }

    def head(self, body: dict[str, Any]) -> dict[str, Any]:
        """The fields every completion and chunk of one reply share."""
        return {"id": self.completion_id(), "created": int(time.time()), "model": body["model"]}

    def finish_reason(self, answer: Answer) -> str:
        return "tool_calls" if answer.tool_calls and answer.finish == "stop" else answer.finish

    def completion(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.reasoning and self.reasoning_field:
            message[self.reasoning_field] = answer.reasoning
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self.tool_call_id(i),
                    "type": "function",
                    "function": {"name": n, "arguments": a},
                }
                for i, (n, a) in enumerate(answer.tool_calls)
            ]
        choice = {"index": 0, "message": message, "finish_reason": self.finish_reason(answer)}
        return {**head, "object": "chat.completion", "choices": [choice], "usage": usage}

    def chunks(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        """OpenAI's layout: a role chunk, the text in pieces, each tool call's arguments in
        pieces, a finish chunk with an empty delta, then (``include_usage``) a usage chunk."""
        base = {**head, "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        if answer.reasoning and self.reasoning_field:
            chunks += [chunk({self.reasoning_field: w}) for w in words(answer.reasoning)]
        chunks += [chunk({"content": w}) for w in words(answer.text)]
        for index, (name, arguments) in enumerate(answer.tool_calls):
            pieces = self.tool_call_pieces(arguments)
            first = {
                "index": index,
                "id": self.tool_call_id(index),
                "type": "function",
                "function": {"name": name, "arguments": pieces[0]},
            }
            chunks.append(chunk({"tool_calls": [first]}))
            for piece in pieces[1:]:
                call = {"index": index, "function": {"arguments": piece}}
                chunks.append(chunk({"tool_calls": [call]}))
        chunks.append(chunk({}, self.finish_reason(answer)))
        if usage is not None:
            chunks.append({**base, "choices": [], "usage": usage})
        return chunks

    def mid_stream_error(self, head: dict[str, Any], message: str) -> list[bytes]:
        """What reaches the client when generation fails after the stream began: OpenAI sends
        an error event; the stream then ends without ``[DONE]``."""
        error = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        return [f"data: {json.dumps(error)}\n\n".encode()]


class VLLMProfile(Profile):
    """vLLM's OpenAI server with a reasoning parser (vllm-project/vllm ``entrypoints/openai``):
    reasoning as ``reasoning_content``, and the matched stop string in ``choice.stop_reason``."""

    name = "vllm"
    models = ("Qwen/Qwen3-Coder-30B-A3B-Instruct",)
    reasoning_field = "reasoning_content"


class LiteLLMProfile(Profile):
    """A LiteLLM proxy (1.106.2) with its Redis cache, in front of an Ollama-served model.

    As measured through a real LiteLLM 1.106.2 (issue 11): every reply carries
    ``x-litellm-version``; a reply served from the cache also carries ``x-litellm-cache-key``
    (LiteLLM docs, "Response Headers" and "Caching"); the model behind is not called for it.
    Streamed and non-streamed requests share cache entries.
    """

    name = "litellm"
    models = ("qwen3-coder",)
    version = "1.106.2"

    def __init__(self) -> None:
        super().__init__()
        self.cache: dict[str, Answer] = {}
        self.upstream_calls = 0

    @staticmethod
    def _key(body: dict[str, Any]) -> str:
        material = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        return uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(material, sort_keys=True)).hex

    def lookup(self, body: dict[str, Any]) -> Answer | None:
        return self.cache.get(self._key(body))

    def store(self, body: dict[str, Any], answer: Answer) -> None:
        self.upstream_calls += 1
        self.cache[self._key(body)] = answer

    def headers(self, hit: bool) -> dict[str, str]:
        headers = {"x-litellm-version": self.version}
        if hit:
            headers["x-litellm-cache-key"] = uuid.uuid4().hex
        return headers


Responder = Callable[[dict[str, Any]], Answer]


class ProfiledServer(LoopbackServer):
    """A loopback server answering chat completions as `profile`'s service does."""

    def __init__(self, profile: Profile, responder: Responder | None = None) -> None:
        super().__init__()
        self.profile = profile
        self.responder = responder
        self.answers: list[Answer] = []
        self.recorded: list[Recorded] = []
        self.seen_prompts: list[list[dict[str, Any]]] = []
        self.delay = 0.0
        self.chunk_delay = 0.0
        self.fail: tuple[int, str] | None = None
        self.fail_mid_stream: str | None = None
        self.fail_after = 1
        self.disconnects = 0
        self.app.router.add_post(CHAT_PATH, self._chat)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def requests(self) -> list[Any]:
        """The body of every chat completion request, in order."""
        return [r.body for r in self.chat_requests]

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.recorded if r.path == CHAT_PATH]

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of every chat completion request, in order."""
        return [r.headers for r in self.chat_requests]

    def push(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def next_answer(self, body: dict[str, Any]) -> Answer:
        """The next queued answer, else the responder's (default: `echo`)."""
        return self.answers.pop(0) if self.answers else (self.responder or echo)(body)

    @staticmethod
    def usage(prompt_tokens: int, answer: Answer) -> dict[str, int]:
        completion_tokens = chars_to_tokens(answer.text + answer.reasoning) + 1
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    async def _models(self, request: web.Request) -> web.Response:
        self.recorded.append(await record(request))
        return web.json_response(self.profile.models_body())

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await record(request)
        self.recorded.append(recorded)
        body = recorded.body
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            status, message = self.fail
            return web.json_response(self.profile.status_error(status, message), status=status)
        try:
            if not isinstance(body, dict):
                raise Refusal(400, self.profile.status_error(400, "the body is not a JSON object"))
            self.profile.check(body)
            seen, prompt_tokens = self.profile.seen(body)
        except Refusal as refusal:
            return web.json_response(refusal.body, status=refusal.status)
        self.seen_prompts.append(seen)
        cached = self.profile.lookup(body)
        if cached is not None:
            answer = cached
        else:
            answer = self.next_answer(body)
            self.profile.store(body, answer)
        extra = self.profile.headers(hit=cached is not None)
        usage = self.usage(prompt_tokens, answer)
        head = self.profile.head(body)
        if not body.get("stream"):
            return web.json_response(self.profile.completion(head, answer, usage), headers=extra)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = self.profile.chunks(head, answer, usage if include_usage else None)
        return await self._stream(request, head, chunks, extra)

    async def _stream(
        self,
        request: web.Request,
        head: dict[str, Any],
        chunks: list[dict[str, Any]],
        extra: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **extra})
        await response.prepare(request)
        events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
        events.append(b"data: [DONE]\n\n")
        try:
            for index, event in enumerate(events):
                if index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await response.write(event)
                if self.fail_mid_stream is not None and index == self.fail_after - 1:
                    for piece in self.profile.mid_stream_error(head, self.fail_mid_stream):
                        await response.write(piece)
                    break  # the stream ends here, without [DONE]
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response
