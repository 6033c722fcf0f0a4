"""Anthropic Messages on the worker: Claude Code's request translated once, next to the engine.

The worker answers ``/v1/messages`` and ``/v1/messages/count_tokens`` itself (on RunPod's
OpenAI route, in queue jobs and in HTTP mode), so Claude Code can use an endpoint directly and
the gateway's ``runpod`` backend sends requests through unchanged. It translates with the
gateway's own translation (`ccrelay_translate`) into the chat-completions request Ollama
serves, and runs that through `ChatService`: the Redis cache and single-flight work exactly as
for chat completions, keyed on the translated request (what the engine sees, so every field
that changes the answer is in the key) plus how the answer is rendered back (the thinking
display). Why not Ollama's own ``/v1/messages``: docs/architecture.md ("The worker speaks
Anthropic Messages").

What the gateway checks before sending, the worker checks too, for callers that come
straight: the JSON depth, the request's shape (the translation names the field), and the
window: a prompt that does not fit the worker's context is refused in the words Claude Code
compacts on (``prompt is too long: N tokens > M maximum``), never sent to be truncated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any

from ccrelay_handler.errors import EngineError, HandlerError, InvalidInput, PromptTooLong
from ccrelay_handler.request import ChatRequest, parse_chat_request
from ccrelay_handler.service import ChatService, StreamVerdict
from ccrelay_handler.settings import HandlerSettings
from ccrelay_translate import (
    OpenAIStreamTranslator,
    anthropic_to_openai_request,
    apply_context_management,
    estimate_tokens,
    openai_to_anthropic_response,
    tool_name_map,
)
from ccrelay_translate.capabilities import OLLAMA_IMAGES, Accepts
from ccrelay_translate.documents import DocumentTexts
from ccrelay_translate.errors import InvalidRequest, TranslationError
from ccrelay_translate.limits import check_depth
from ccrelay_translate.request import thinking_display
from ccrelay_wire import CACHE_VERDICT_FIELD

__all__ = ["MessagesService", "Prepared", "anthropic_error", "anthropic_sse"]

logger = logging.getLogger("ccrelay.handler")

WORKER = "worker"
"""The backend name the translation's reply errors carry."""

_ACCEPTS = Accepts(
    image_types=sorted(OLLAMA_IMAGES), image_urls=False, reasoning_history="reasoning"
)
"""What the worker's Ollama takes (ollama/ollama openai/openai.go): jpeg/png/webp data URIs
only, and earlier reasoning back as ``reasoning``."""


@dataclass(frozen=True)
class Prepared:
    """A Messages request made ready: the chat request the engine runs, and how to answer."""

    chat: ChatRequest
    model: str
    display: str
    tool_names: dict[str, str]
    prompt_tokens: int
    applied_edits: list[dict[str, Any]] | None
    """``context_management`` edits applied here (Anthropic applies them server-side), for the
    answer's ``context_management.applied_edits``; None when the request asked for none."""


class MessagesService:
    """Anthropic Messages over a `ChatService` (which owns the engine, cache and single-flight)."""

    def __init__(self, chat: ChatService, settings: HandlerSettings) -> None:
        self.chat = chat
        self.settings = settings
        self.documents = DocumentTexts(
            max_pages=_ACCEPTS.pdf_max_pages, max_chars=_ACCEPTS.pdf_max_chars
        )

    def model_for(self, requested: object) -> str:
        """Claude Code asks for a Claude model; the worker serves its own. A name this worker
        serves is kept (the allowlist decides), anything else is the configured model."""
        if isinstance(requested, str) and requested in self.settings.allowed_models:
            return requested
        return self.settings.model

    def prompt_limit(self) -> int | None:
        """The most prompt tokens a request may carry: the window less an output reserve
        (the gateway's rule: min(4096, window / 8))."""
        window = self.settings.context_length
        if not window:
            return None
        return max(window - min(4096, window // 8), 1)

    def count_tokens(self, body: Any) -> dict[str, int]:
        """``/v1/messages/count_tokens``: the calibrated estimate (over-counting, as the gateway's)."""
        request = _request(body, count=True)
        with _translation_errors():
            return {"input_tokens": estimate_tokens(request)}

    async def prepare(self, body: Any, *, stream: bool) -> Prepared:
        request = _request(body, count=False)
        cache = request.pop("cache", None)
        with _translation_errors():
            request, applied = apply_context_management(request, count_tokens=estimate_tokens)
            tokens = estimate_tokens(request)
        limit = self.prompt_limit()
        if limit is not None and tokens > limit:
            raise PromptTooLong(tokens, limit)
        model = self.model_for(request.get("model"))
        await self.documents.prepare(request)
        with _translation_errors():
            chat = anthropic_to_openai_request(
                request,
                model=model,
                stream=stream,
                include_usage=True,
                caps=_ACCEPTS.capabilities(model),
                documents=self.documents,
            )
        if cache is not None:
            chat["cache"] = cache
        return Prepared(
            chat=parse_chat_request(chat),
            model=model,
            display=thinking_display(request),
            tool_names=tool_name_map(request),
            prompt_tokens=tokens,
            applied_edits=applied,
        )

    async def complete(self, body: Any, *, label: str | None = None) -> dict[str, Any]:
        """A Messages response, with the cache verdict as ``x_ccrelay_cache``."""
        prepared = await self.prepare(body, stream=False)
        completion, verdict = await self.chat.complete_with_verdict(prepared.chat, label=label)
        with _translation_errors():
            message = openai_to_anthropic_response(
                completion,
                model=prepared.model,
                backend=WORKER,
                thinking_display=prepared.display,
                tool_names=prepared.tool_names,
            )
        if prepared.applied_edits is not None:
            message["context_management"] = {"applied_edits": prepared.applied_edits}
        return {**message, CACHE_VERDICT_FIELD: verdict}

    async def stream(
        self, prepared: Prepared, *, label: str | None = None, verdict: StreamVerdict | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The Anthropic events of `prepared`'s answer; ``message_start`` carries the verdict.

        An error before the first event is raised (the caller can still answer with its
        status); after it, too: the caller ends the stream with an SSE ``error`` event.
        """
        holder = verdict or StreamVerdict()
        translator = OpenAIStreamTranslator(
            prepared.model,
            input_tokens_estimate=prepared.prompt_tokens,
            backend=WORKER,
            thinking_display=prepared.display,
            tool_names=prepared.tool_names,
        )
        chunks = self.chat.stream(prepared.chat, label=label, verdict=holder)
        async with aclosing(chunks):
            async for chunk in chunks:
                with _translation_errors():
                    events = translator.feed(chunk)
                for event in events:
                    if event.get("type") == "message_start":
                        event = _with_verdict(event, holder.value)
                    yield _with_applied(event, prepared.applied_edits)
        if not translator.finished_cleanly:
            raise EngineStreamCut("the engine's answer ended before its finish")
        for event in translator.finish():
            yield _with_applied(event, prepared.applied_edits)


class EngineStreamCut(HandlerError):
    """The engine's stream ended before a finish reason: the answer is not whole."""

    http_status = 502
    error_type = "api_error"
    code = "engine_error"


def anthropic_sse(event: dict[str, Any]) -> str:
    """One Anthropic event as SSE text, as Anthropic's API writes it."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event.get('type', 'message')}\ndata: {data}\n\n"


def anthropic_error(exc: HandlerError) -> dict[str, Any]:
    """A handler error in Anthropic's shape (the body of an error reply or SSE event)."""
    return {"type": "error", "error": {"type": exc.error_type, "message": str(exc)}}


def _with_applied(event: dict[str, Any], applied: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``message_delta`` carries ``context_management`` at its top level, as Anthropic's does."""
    if applied is None or event.get("type") != "message_delta":
        return event
    return {**event, "context_management": {"applied_edits": applied}}


def _with_verdict(event: dict[str, Any], verdict: str | None) -> dict[str, Any]:
    message = event.get("message")
    if verdict is None or not isinstance(message, dict):
        return event
    return {**event, "message": {**message, CACHE_VERDICT_FIELD: verdict}}


def _request(body: Any, *, count: bool) -> dict[str, Any]:
    """The body as a request dict, its depth checked; a shallow copy (fields are replaced,
    never mutated in place)."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object (an Anthropic Messages request)")
    with _translation_errors():
        check_depth(body)
    if not isinstance(body.get("messages"), list):
        raise InvalidInput("messages", "Field required (a list of messages)")
    if not count:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInput("max_tokens", "must be a positive integer")
    return dict(body)


@contextmanager
def _translation_errors() -> Iterator[None]:
    """The translation's errors as the handler's: a bad request names its field; a reply the
    translation cannot read is the engine's error."""
    try:
        yield
    except InvalidRequest as exc:
        field, _, problem = exc.message.partition(": ")
        raise InvalidInput(field if problem else "request", problem or exc.message) from None
    except TranslationError as exc:
        raise EngineError(exc.message) from None
