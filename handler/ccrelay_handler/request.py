"""What a job (or an HTTP request) asks for: a chat-completions request, validated, or an
Anthropic Messages request (answered by `ccrelay_handler.messages`).

These job shapes reach the RunPod handler:

* native: ``job["input"]`` *is* the chat request: ``{"model", "messages", "stream", ...}``;
* RunPod's OpenAI-compatible route (``https://api.runpod.ai/v2/{id}/openai/v1/...``):
  ``{"openai_route": "/v1/chat/completions", "openai_input": {...chat request...}}``,
  ``{"openai_route": "/v1/messages", "openai_input": {...Anthropic request...}}`` (and
  ``/v1/messages/count_tokens``: RunPod relays Anthropic's routes too), or
  ``{"openai_route": "/v1/models"}``;
* a warm-up, ``{"ccrelay_warmup": true}``: sent by the client the moment a session starts, so
  a scale-to-zero endpoint cold-starts while the user types. It is answered without inference
  (the worker's boot has loaded the model before it takes any job).

Per-request cache control rides in the request body (OpenAI clients send it with
``extra_body``)::

    "cache": {"mode": "default" | "no-cache" | "no-store", "ttl": <seconds>}

``default`` reads the cache and stores misses; ``no-cache`` skips the read (always runs
inference) but stores the fresh result; ``no-store`` neither reads nor stores.  ``ttl``
overrides the worker's ``CCRELAY_CACHE_TTL`` for the stored entry.  ``cache`` is never sent
to Ollama and never part of the cache key.

Unknown OpenAI fields are accepted (clients send ``parallel_tool_calls``, ``logprobs``...),
forwarded to Ollama, and - because they may change the output - part of the cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccrelay_handler.errors import InvalidInput

__all__ = [
    "CacheControl",
    "ChatJob",
    "ChatMessage",
    "ChatRequest",
    "MessagesJob",
    "ModelsJob",
    "WarmupJob",
    "parse_chat_request",
    "parse_job_input",
]

CacheMode = Literal["default", "no-cache", "no-store"]

# Fields that never change what the model writes: left out of the cache key.
_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "cache"})
# Fields that are ours, never Ollama's.
_NOT_FOR_ENGINE = frozenset({"cache"})

_CHAT_ROUTES = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_ROUTES = frozenset({"/v1/models", "/models"})
_MESSAGES_ROUTES = frozenset({"/v1/messages", "/messages"})
_COUNT_ROUTES = frozenset({"/v1/messages/count_tokens", "/messages/count_tokens"})

_MAX_TTL_S = 30 * 86_400


class CacheControl(BaseModel):
    """Per-request cache control (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: CacheMode = "default"
    ttl: int | None = Field(default=None, gt=0, le=_MAX_TTL_S)


class ChatMessage(BaseModel):
    """One chat message; ``tool_calls``, ``tool_call_id``, ``name``... pass through as extras."""

    model_config = ConfigDict(extra="allow", frozen=True)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request as the worker accepts it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: str | None = Field(default=None, min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: Literal[1] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    cache: CacheControl = CacheControl()

    @property
    def include_usage(self) -> bool:
        """Whether a stream should end with a usage chunk: yes unless the client said false."""
        if self.stream_options is None:
            return True
        return bool(self.stream_options.get("include_usage", True))

    def key_material(self, model: str) -> dict[str, Any]:
        """Every output-affecting parameter, with ``model`` resolved: what the cache key hashes."""
        body = self.model_dump(mode="json", exclude_none=True, exclude=set(_NOT_IN_KEY))
        body["model"] = model
        return body

    def engine_payload(self, model: str, *, stream: bool) -> dict[str, Any]:
        """The body to POST to Ollama's ``/v1/chat/completions``."""
        body = self.model_dump(
            mode="json", exclude_none=True, exclude=set(_NOT_FOR_ENGINE | {"stream_options"})
        )
        body["model"] = model
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass(frozen=True, slots=True)
class ChatJob:
    """A chat-completions job; ``openai_route`` when it came through RunPod's OpenAI route."""

    request: ChatRequest
    openai_route: bool = False


@dataclass(frozen=True, slots=True)
class MessagesJob:
    """An Anthropic Messages request (``openai_route: /v1/messages``), validated later by
    `ccrelay_handler.messages` as it is translated (the translation names a bad field)."""

    body: dict[str, Any]
    count_tokens: bool = False

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True, slots=True)
class ModelsJob:
    """A ``/v1/models`` job from RunPod's OpenAI route."""


@dataclass(frozen=True, slots=True)
class WarmupJob:
    """A warm-up: answered at once, with what the worker serves (no inference)."""


def _describe(exc: ValidationError, prefix: str) -> InvalidInput:
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    field = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            field = f"{field}.{part}" if field else str(part)
    problem = first["msg"]
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidInput(field or "input", problem)


def parse_chat_request(data: Any, *, field_prefix: str = "") -> ChatRequest:
    """Validate a chat request body; raise ``InvalidInput`` naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidInput(field_prefix or "input", "must be a JSON object")
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, field_prefix) from exc


def parse_job_input(job_input: Any) -> ChatJob | MessagesJob | ModelsJob | WarmupJob:
    """Turn a RunPod job's ``input`` (native or OpenAI-route shape) into a job description."""
    if not isinstance(job_input, dict):
        raise InvalidInput("input", "must be a JSON object")
    if job_input.get("ccrelay_warmup") is True:
        return WarmupJob()
    route = job_input.get("openai_route")
    if route is None:
        return ChatJob(parse_chat_request(job_input))
    if not isinstance(route, str):
        raise InvalidInput("openai_route", "must be a string")
    route = route.rstrip("/")
    if route in _MODELS_ROUTES:
        return ModelsJob()
    if route in _CHAT_ROUTES:
        body = job_input.get("openai_input")
        if body is None:
            raise InvalidInput("openai_input", "Field required")
        return ChatJob(parse_chat_request(body, field_prefix="openai_input"), openai_route=True)
    if route in _MESSAGES_ROUTES or route in _COUNT_ROUTES:
        body = job_input.get("openai_input")
        if not isinstance(body, dict):
            raise InvalidInput("openai_input", "must be a JSON object (an Anthropic request)")
        return MessagesJob(body, count_tokens=route in _COUNT_ROUTES)
    raise InvalidInput(
        "openai_route",
        f"unsupported route {route[:60]!r} (supported: /v1/messages, "
        "/v1/messages/count_tokens, /v1/chat/completions, /v1/models)",
    )
