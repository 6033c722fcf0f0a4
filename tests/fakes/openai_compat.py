"""OpenAI-compatible servers that behave like the real ones ccrelay meets, quirks included.

Each `Profile` is one real service, its behaviour taken from its source or docs (cited on each
class; the facts are also in ``../shared/reference/FACTS.md``). A `ProfiledServer` speaks
OpenAI's chat completions the way its profile's service does: the ids it gives, where reasoning
goes, how tool calls stream, what it refuses with which error, what the model "sees" of the
prompt (`ProfiledServer.seen`: Ollama keeps one system message and silently drops the oldest
messages past its context).

A test says *what* the model answers (`Answer`: text, reasoning, tool calls), by queueing
answers or with a `responder` function; the profile decides *how* it goes on the wire.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.providers import LoopbackServer


@dataclass
class Answer:
    """What the model says: its reasoning, its text, its tool calls ((name, arguments JSON))."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


class Refusal(Exception):
    """The service refuses the request: ``status`` and the body it answers."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def chars_to_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class Profile:
    """The generic OpenAI-compatible behaviour; each service overrides what it does its own way."""

    name = "openai"
    models: tuple[str, ...] = ("fake-model",)
    reasoning_field: str | None = "reasoning"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def completion_id(self) -> str:
        return f"chatcmpl-{uuid.uuid4().hex[:24]}"

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

    def seen(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """(the transcript the model reads, its prompt tokens)."""
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


class OllamaProfile(Profile):
    """Ollama 0.13.x's OpenAI compatibility (ollama/ollama v0.13.5: ``openai/openai.go``,
    ``middleware/openai.go``, ``server/prompt.go``, ``model/renderers/qwen3coder.go``):

    - completion ids are ``chatcmpl-<rand 0..998>``: they repeat (``id_pool`` narrows the range
      to make a test see repeats sooner);
    - a streamed tool call arrives whole, in one chunk, with its ``index``; ``finish_reason``
      rides on the last content chunk; with ``include_usage`` one more chunk has ``choices: []``;
    - reasoning is ``reasoning``;
    - ``tool_choice``, ``parallel_tool_calls``, ``top_k``, ``user`` are ignored;
    - images must be ``data:image/{jpeg,jpg,png,webp};base64,...`` (or ``data:;base64,``):
      anything else, URLs and GIFs included, fails with "invalid image input";
    - the qwen3-coder template keeps only the first system message;
    - a prompt longer than ``context_length`` tokens is silently cut from the front (the oldest
      messages after the system message go) and ``prompt_tokens`` counts what was kept.
    """

    name = "ollama"
    models = ("qwen3-coder:30b",)
    _IMAGE = re.compile(r"^data:(image/(jpeg|jpg|png|webp))?;base64,")

    def __init__(self, *, id_pool: int = 999, context_length: int = 32768, seed: int = 7) -> None:
        super().__init__()
        self.id_pool = id_pool
        self.context_length = context_length
        self._random = random.Random(seed)
        self.truncated = 0  # prompts cut so far

    def completion_id(self) -> str:
        return f"chatcmpl-{self._random.randrange(self.id_pool)}"

    def check(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model not in self.models:
            raise Refusal(404, self.error(f'model "{model}" not found, try pulling it first'))
        for message in body.get("messages") or []:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    if not self._IMAGE.match(url):
                        raise Refusal(400, self.error("invalid image input"))

    def seen(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        systems = [m for m in messages if m.get("role") == "system"]
        rest = [m for m in messages if m.get("role") != "system"]
        kept = systems[:1] + rest  # the renderer keeps the first system message only
        tokens = sum(chars_to_tokens(json.dumps(m)) for m in kept)
        cut = False
        while tokens > self.context_length and len(kept) > 2:
            dropped = kept.pop(1 if kept[0].get("role") == "system" else 0)
            tokens -= chars_to_tokens(json.dumps(dropped))
            cut = True
        self.truncated += cut
        return kept, tokens

    def tool_call_pieces(self, arguments: str) -> list[str]:
        return [arguments]  # whole, in one chunk


class CerebrasProfile(Profile):
    """Cerebras' OpenAI-compatible API (api.cerebras.ai/v1), as documented and reported:

    - the catalog (``GET /v1/models``, late 2026): ``gpt-oss-120b``, ``qwen-3.8-27b``, both
      reasoning models; a retired id (``qwen-3-coder-480b``) answers 404 ``model_not_found``;
    - reasoning comes as ``reasoning`` on the message and on stream deltas;
    - ``reasoning_effort`` is ``low`` | ``medium`` | ``high``, and for gpt-oss only (others 400);
    - tool schemas with keywords it does not support answer 400 ``Unsupported JSON schema
      fields: {...}`` (claude-code-router issue #708; dcdpr/jp#531 lists minItems, maxItems,
      pattern, format);
    - unknown request properties are refused, ``wrong_api_format`` (Gitlawb/openclaude#740:
      ``store``; free-claude-code#1136: ``reasoning_content`` on assistant messages);
    - ``response_format`` json_schema needs a ``name`` (cerebras-cloud-sdk-python#4);
    - errors are flat ``{"message", "type", "param", "code"}`` objects.
    """

    name = "cerebras"
    models = ("gpt-oss-120b", "qwen-3.8-27b")
    retired = ("qwen-3-coder-480b", "llama-3.3-70b")
    unsupported_schema = frozenset(
        {"minItems", "maxItems", "pattern", "format", "minLength", "maxLength"}
    )
    known_fields = frozenset(
        {
            "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
            "stream", "stream_options", "tools", "tool_choice", "stop", "seed", "response_format",
            "reasoning_effort", "user", "n", "logprobs", "top_logprobs",
        }
    )  # fmt: skip
    known_message_fields = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})

    def error(self, message: str, code: str | None = None, param: str | None = None) -> dict:
        return {"message": message, "type": "invalid_request_error", "param": param, "code": code}

    def check(self, body: dict[str, Any]) -> None:
        for name in body:
            if name not in self.known_fields:
                raise Refusal(
                    422,
                    self.error(
                        f"body.{name}: property 'body.{name}' is unsupported",
                        "wrong_api_format",
                        "validation_error",
                    ),
                )
        for i, message in enumerate(body.get("messages") or []):
            for name in message:
                if name not in self.known_message_fields:
                    path = f"messages.{i}.{message.get('role')}.{name}"
                    raise Refusal(
                        400,
                        self.error(
                            f"{path}: property '{path}' is unsupported",
                            "wrong_api_format",
                            "validation_error",
                        ),
                    )
        model = body.get("model")
        if model in self.retired or model not in self.models:
            raise Refusal(
                404,
                {
                    "message": f"Model {model} does not exist or you do not have access to it.",
                    "type": "not_found_error",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        effort = body.get("reasoning_effort")
        if effort is not None and (
            not str(model).startswith("gpt-oss") or effort not in ("low", "medium", "high")
        ):
            raise Refusal(
                400,
                self.error(
                    f"reasoning_effort {effort!r} is not supported for {model}",
                    "wrong_api_format",
                    "reasoning_effort",
                ),
            )
        for tool in body.get("tools") or []:
            found = _keywords(tool.get("function", {}).get("parameters")) & self.unsupported_schema
            if found:
                raise Refusal(
                    400,
                    self.error(
                        f"Unsupported JSON schema fields: {found}", "wrong_api_format", "tools"
                    ),
                )
        fmt = body.get("response_format")
        if (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and not (fmt.get("json_schema") or {}).get("name")
        ):
            raise Refusal(
                400,
                self.error(
                    "response_format.json_schema.name: Field required",
                    "wrong_api_format",
                    "response_format",
                ),
            )
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
                raise Refusal(
                    400,
                    self.error(
                        "image inputs are not supported by this model",
                        "wrong_api_format",
                        "messages",
                    ),
                )


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


def _keywords(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for sub in value.values():
                    found |= _keywords(sub)
            elif isinstance(value, dict):
                found |= _keywords(value)
            elif isinstance(value, list):
                for sub in value:
                    found |= _keywords(sub)
    return found


Responder = Callable[[dict[str, Any]], Answer]


class ProfiledServer(LoopbackServer):
    """A loopback server answering chat completions as `profile`'s service does."""

    def __init__(self, profile: Profile, responder: Responder | None = None) -> None:
        super().__init__()
        self.profile = profile
        self.responder = responder
        self.answers: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.seen_prompts: list[list[dict[str, Any]]] = []
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def push(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(self.profile.models_body())

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        try:
            self.profile.check(body)
        except Refusal as refusal:
            return web.json_response(refusal.body, status=refusal.status)
        seen, prompt_tokens = self.profile.seen(body.get("messages") or [])
        self.seen_prompts.append(seen)
        cached = self.profile.lookup(body)
        if cached is not None:
            answer = cached
        else:
            answer = self.answers.pop(0) if self.answers else (self.responder or _echo)(body)
            self.profile.store(body, answer)
        extra = self.profile.headers(hit=cached is not None)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": chars_to_tokens(answer.text + answer.reasoning) + 1,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {
            "id": self.profile.completion_id(),
            "created": int(time.time()),
            "model": body["model"],
        }
        if not body.get("stream"):
            return web.json_response(self._completion(head, answer, usage), headers=extra)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **extra})
        await response.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for chunk in self._chunks(head, answer, usage if include_usage else None):
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _completion(self, head: dict[str, Any], answer: Answer, usage: dict[str, int]) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.reasoning and self.profile.reasoning_field:
            message[self.profile.reasoning_field] = answer.reasoning
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}_{uuid.uuid4().hex[:6]}",
                    "type": "function",
                    "function": {"name": n, "arguments": a},
                }
                for i, (n, a) in enumerate(answer.tool_calls)
            ]
        finish = "tool_calls" if answer.tool_calls else "stop"
        return {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }

    def _chunks(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        base = {**head, "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        field_name = self.profile.reasoning_field
        if answer.reasoning and field_name:
            for word in re.findall(r"\S+\s*", answer.reasoning):
                chunks.append(chunk({field_name: word}))
        for word in re.findall(r"\S+\s*", answer.text):
            chunks.append(chunk({"content": word}))
        for index, (name, arguments) in enumerate(answer.tool_calls):
            call_id = f"call_{index}_{uuid.uuid4().hex[:6]}"
            pieces = self.profile.tool_call_pieces(arguments)
            first = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": pieces[0]},
            }
            chunks.append(chunk({"tool_calls": [first]}))
            for piece in pieces[1:]:
                chunks.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        finish = "tool_calls" if answer.tool_calls else "stop"
        if isinstance(self.profile, OllamaProfile) and len(chunks) > 1:
            chunks[-1]["choices"][0]["finish_reason"] = finish  # on the last content chunk
        else:
            chunks.append(chunk({}, finish))
        if usage is not None:
            chunks.append({**base, "choices": [], "usage": usage})
        return chunks


def _echo(body: dict[str, Any]) -> Answer:
    last = (body.get("messages") or [{}])[-1].get("content")
    text = last if isinstance(last, str) else json.dumps(last)
    return Answer(text=f"Echo: {text[:200]}")
