"""A fake Ollama speaking its OpenAI-compatible API, on 127.0.0.1, in a background thread.

``POST /v1/chat/completions`` (plain, and streamed as SSE the way Ollama streams: a
``chat.completion.chunk`` per piece, a finish chunk, a usage chunk when
``stream_options.include_usage``, then ``data: [DONE]``), ``GET /v1/models``, and the bare
native ``GET /``, ``/api/version``, ``/api/tags``.  Errors use Ollama's OpenAI-compat shape
``{"error": {"message", "type", "param", "code"}}``; an unknown model is a 404 like Ollama's.
Completion ids are Ollama's: ``chatcmpl-<rand 0..998>`` (ollama/ollama v0.13.5,
``openai/openai.go``), so they repeat; the handler must not rely on them.

It runs in its own thread with its own loop, so sync tests, async tests and subprocesses
(the RunPod SDK's local server) can all reach it.  Every request is recorded in
``requests``; the knobs are plain attributes, set from the test.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["OllamaServer", "Recorded"]


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


@dataclass
class OllamaServer:
    """The fake's state and knobs (reset with ``reset``)."""

    models: list[str] = field(default_factory=lambda: ["qwen3-coder:30b"])
    delay: float = 0.0  # seconds before answering a chat completion
    chunk_delay: float = 0.0  # seconds between two streamed chunks
    fail: tuple[int, str] | None = None  # (status, message): answer every chat with this error
    fail_mid_stream: str | None = None  # an error event after `fail_after` streamed chunks
    fail_after: int = 1
    content: str | None = None  # the reply text; default "Echo: <last user message>"
    tool_calls: list[dict[str, Any]] | None = None  # reply with these tool calls
    requests: list[Recorded] = field(default_factory=list)
    disconnects: int = 0  # streams the client dropped before the end
    port: int = 0
    _random: random.Random = field(default_factory=lambda: random.Random(13))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def reset(self) -> None:
        self.delay = self.chunk_delay = 0.0
        self.fail = None
        self.fail_mid_stream = None
        self.fail_after = 1
        self.content = None
        self.tool_calls = None
        self.requests.clear()
        self.disconnects = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OllamaServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # --- replies -----------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return web.json_response(body, status=status)

    def _text(self, body: dict[str, Any]) -> str:
        if self.content is not None:
            return self.content
        last = next(
            (m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {}
        )
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return f"Echo: {content}"

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])
        completion = len(text.split())
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": call.get("id", f"call_{i}"),
                "index": i,
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": json.dumps(call.get("arguments", {})),
                },
            }
            for i, call in enumerate(self.tool_calls or [])
        ]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.method, request.path, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            return self._error(*self.fail)
        model = body.get("model")
        if model not in self.models:
            return self._error(404, f'model "{model}" not found, try pulling it first')
        text = "" if self.tool_calls else self._text(body)
        head = {
            "id": f"chatcmpl-{self._random.randrange(999)}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_ollama",
        }
        finish = "tool_calls" if self.tool_calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.tool_calls:
                message["tool_calls"] = [
                    {k: v for k, v in c.items() if k != "index"} for c in self._calls()
                ]
            return web.json_response(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": self._usage(body, text),
                }
            )
        return await self._stream(request, body, head, text, finish)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        head: dict[str, Any],
        text: str,
        finish: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        pieces = [w + " " for w in text.split(" ")]
        pieces[-1] = pieces[-1][:-1]
        events = [chunk({"role": "assistant", "content": p}) for p in pieces if p]
        if self.tool_calls:
            events.append(chunk({"role": "assistant", "content": "", "tool_calls": self._calls()}))
        events.append(chunk({"role": "assistant", "content": ""}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**head, "object": "chat.completion.chunk", "choices": []}
            usage["usage"] = self._usage(body, text)
            events.append(f"data: {json.dumps(usage)}\n\n".encode())
        events.append(b"data: [DONE]\n\n")
        try:
            for index, event in enumerate(events):
                if index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await response.write(event)
                if index == self.fail_after - 1 and self.fail_mid_stream:
                    error = {"error": {"message": self.fail_mid_stream, "type": "api_error"}}
                    await response.write(f"data: {json.dumps(error)}\n\n".encode())
                    break
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.method, request.path, None))
        data = [
            {"id": m, "object": "model", "created": 1735689600, "owned_by": "library"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.13.5"})

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {"name": m, "model": m, "size": 1, "digest": "0" * 64} for m in self.models
                ]
            }
        )
