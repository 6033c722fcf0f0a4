"""The OpenAI chat-completions protocol, shared by every OpenAI-speaking backend.

`OpenAIChatBackend` turns the canonical Anthropic request into a chat-completions call with
`ccrelay_translate`, shaped to what the backend `accepts` (images, PDFs as text, schema
keywords, structured output, reasoning effort), and the reply (or its SSE chunks) back into
Anthropic's shapes, reasoning as thinking blocks. Cerebras and the generic `openai` backend are
thin subclasses that set defaults.

- **A model the backend does not serve** (404): the error names the models it lists
  (``GET /models``, asked once and kept a minute), so a retired id is a one-line fix.
- **A backend that needs no model in config** (`discovers_model`): the model is picked from
  ``GET /models`` by `preferred_models`, once, and kept until a 404 says the catalog changed.
- **Cache verdicts** the server reports are kept: the ccrelay worker's (its field or header)
  and LiteLLM's, whose Redis cache marks a hit with the ``x-litellm-cache-key`` header
  (absent on a miss, while ``x-litellm-version`` is always sent).
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

import orjson
from pydantic import Field

from ccrelay.backends.base import Backend
from ccrelay.backends.context_policy import with_tool_clearing
from ccrelay.backends.types import (
    CacheVerdict,
    ModelInfo,
    RepairedToolCalls,
    RequestOptions,
    StreamItem,
)
from ccrelay.errors import (
    CcrelayError,
    ProtocolError,
    UnknownModelError,
    UpstreamInvalidRequest,
    UpstreamServerError,
)
from ccrelay.http.client import SSEReply, UpstreamClient
from ccrelay_config.models import BackendSettings
from ccrelay_translate import (
    OpenAIStreamTranslator,
    anthropic_to_openai_request,
    apply_context_management,
    estimate_tokens,
    openai_to_anthropic_response,
    response_to_anthropic_events,
    tool_name_map,
)
from ccrelay_translate._common import new_message_id
from ccrelay_translate.capabilities import Accepts
from ccrelay_translate.documents import DocumentTexts
from ccrelay_translate.request import thinking_display
from ccrelay_translate.tools import schema_keywords
from ccrelay_wire import CACHE_VERDICT_FIELD, CACHE_VERDICT_HEADER

log = logging.getLogger("ccrelay.backends")

_CATALOG_TTL_S = 60.0
_SCHEMA_FIELDS = re.compile(r"[Uu]nsupported JSON schema fields?:?\s*\{([^}]*)\}")


class OpenAIChatSettings(BackendSettings):
    stream_usage: bool = Field(
        True, description="send stream_options.include_usage so streamed usage is real, not 0"
    )
    drop_params: list[str] = Field(
        default_factory=list, description="chat-completions fields this provider rejects"
    )
    accepts: Accepts = Field(default_factory=Accepts, description="what the backend takes")


def verdict_from_headers(headers: Mapping[str, str]) -> CacheVerdict | None:
    """The cache verdict a reply's headers carry: the ccrelay worker's, or LiteLLM's."""
    worker = CacheVerdict.parse(headers.get(CACHE_VERDICT_HEADER))
    if worker is not None:
        return worker
    if headers.get("x-litellm-cache-key"):
        return CacheVerdict("hit")
    if headers.get("x-litellm-version"):
        return CacheVerdict("miss")
    return None


class OpenAIChatBackend(Backend[OpenAIChatSettings]):
    """Any service speaking OpenAI's /chat/completions and /models."""

    Settings: ClassVar[type[BackendSettings]] = OpenAIChatSettings
    default_base_url: ClassVar[str | None] = None
    always_drop: ClassVar[tuple[str, ...]] = ()
    discovers_model: ClassVar[bool] = False
    """Pick the model from GET /models when the config names none."""
    preferred_models: ClassVar[tuple[str, ...]] = ()
    """fnmatch patterns, best first, for `discovers_model`; else the first model listed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base_url = self.settings.base_url or self.default_base_url
        if not base_url:
            raise CcrelayError(f"backend {self.name!r} needs a base_url in the config")
        self.upstream = self.upstream_client(base_url)
        accepts = self.settings.accepts
        self.documents = DocumentTexts(
            max_pages=accepts.pdf_max_pages, max_chars=accepts.pdf_max_chars
        )
        self._catalog: tuple[float, list[ModelInfo]] | None = None
        self._discovered: str | None = None

    # -- the model -----------------------------------------------------------------------------

    async def choose_model(self, request: Mapping[str, Any], options: RequestOptions) -> str:
        if options.model_override or self.settings.model or not self.discovers_model:
            return self.model_for(request, options)
        mapped = self.settings.map_model(request.get("model"))
        if mapped:
            return mapped
        if self._discovered is None:
            self._discovered = pick_model(await self._models(), self.preferred_models, self.name)
        return self._discovered

    async def _models(self, *, fresh: bool = False) -> list[ModelInfo]:
        now = time.monotonic()
        if not fresh and self._catalog is not None and now - self._catalog[0] < _CATALOG_TTL_S:
            return self._catalog[1]
        models = await self.list_models()
        self._catalog = (now, models)
        return models

    async def _not_served(self, exc: UnknownModelError, model: str) -> CcrelayError:
        """The 404 again, naming what the backend does serve (its catalog, asked again)."""
        self._discovered = None  # the catalog changed: pick again next time
        try:
            listed = [m.id for m in await self._models(fresh=True)]
        except CcrelayError:
            return exc
        served = ", ".join(listed[:20]) or "(none listed)"
        said = exc.message.removeprefix(f"{self.name}: ")
        return UnknownModelError(
            self.name,
            f"{said}; backend {self.name!r} serves: {served}",
            upstream_status=exc.upstream_status,
        )

    # -- one attempt ---------------------------------------------------------------------------

    def chat_body(self, request: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        settings = self.settings
        body = anthropic_to_openai_request(
            request,
            model=model,
            max_tokens_limit=settings.max_tokens_limit,
            stream=stream,
            include_usage=settings.stream_usage,
            caps=settings.accepts.capabilities(model),
            documents=self.documents,
        )
        for name in (*self.always_drop, *settings.drop_params):
            body.pop(name, None)
        return body

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        request, applied = edited(request, options, self)
        await self.documents.prepare(request)
        body = self.chat_body(request, model, stream=False)
        try:
            reply = await self.upstream.request("POST", "/chat/completions", body, model=model)
        except UnknownModelError as exc:
            raise await self._not_served(exc, model) from None
        except UpstreamInvalidRequest as exc:
            if probe(request):
                return self._probe_answer(request, model, options), None
            raise self._schema_refused(exc, body) from None
        response = openai_to_anthropic_response(
            reply.data,
            model=model,
            backend=self.name,
            thinking_display=thinking_display(request),
            tool_names=tool_name_map(request),
        )
        if applied is not None:
            response["context_management"] = {"applied_edits": applied}
        verdict = verdict_from_headers(reply.headers) or _verdict_field(reply.data)
        return response, verdict.value if verdict is not None else None

    def _probe_answer(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> dict[str, Any]:
        """What Anthropic answers a request with a tiny ``max_tokens`` (Claude Code's start-up
        probe sends 1): a message cut at its limit. A reasoning model refuses such a request
        (it cannot even start to think), which would turn Claude Code's probe into a 400."""
        log.info(
            "%s refused a max_tokens=%s probe; answering it as cut off",
            self.name,
            request.get("max_tokens"),
        )
        return {
            "id": new_message_id(),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_tokens(request, options), "output_tokens": 0},
        }

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        request, applied = edited(request, options, self)
        await self.documents.prepare(request)
        body = self.chat_body(request, model, stream=True)
        translator = OpenAIStreamTranslator(
            model,
            input_tokens_estimate=self.prompt_tokens(request, options),
            backend=self.name,
            thinking_display=thinking_display(request),
            tool_names=tool_name_map(request),
        )
        try:
            async with (
                self.upstream.stream("/chat/completions", body, model=model) as response,
                aclosing(openai_stream_items(response, translator, self.upstream, model)) as items,
            ):
                async for item in items:
                    yield with_applied(item, applied)
        except UnknownModelError as exc:
            raise await self._not_served(exc, model) from None
        except UpstreamInvalidRequest as exc:
            if not probe(request):
                raise self._schema_refused(exc, body) from None
            for event in response_to_anthropic_events(self._probe_answer(request, model, options)):
                yield event
            return
        if not translator.finished_cleanly:
            raise UpstreamServerError(
                self.name,
                "the stream ended before a finish_reason (truncated reply)",
                upstream_status=502,
            )
        for out in translator.finish():
            yield with_applied(out, applied)
        if translator.repaired_tool_calls:
            yield RepairedToolCalls(translator.repaired_tool_calls)

    def _schema_refused(self, exc: UpstreamInvalidRequest, body: dict[str, Any]) -> CcrelayError:
        """A 400 about JSON-schema fields, naming the tools whose schemas use them."""
        match = _SCHEMA_FIELDS.search(exc.message)
        if not match:
            return exc
        fields = {f.strip().strip("'\"") for f in match.group(1).split(",") if f.strip()}
        tools = [
            tool["function"]["name"]
            for tool in body.get("tools") or []
            if fields & schema_keywords(tool["function"].get("parameters"))
        ]
        where = f" (used by tool(s): {', '.join(tools)})" if tools else ""
        return UpstreamInvalidRequest(
            self.name,
            f"{exc.message.removeprefix(self.name + ': ')}{where}; add "
            f"{', '.join(sorted(fields))} to accepts.strip_schema_keywords for this backend",
            upstream_status=exc.upstream_status,
        )

    async def list_models(self) -> list[ModelInfo]:
        reply = await self.upstream.request_json("GET", "/models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise ProtocolError(self.name, "GET /models did not return a `data` list")
        models = [
            ModelInfo(str(item["id"]), item.get("owned_by"), reported_window(item))
            for item in data
            if isinstance(item, dict) and item.get("id")
        ]
        self.note_models(models)
        return models


async def openai_stream_items(
    response: SSEReply, translator: OpenAIStreamTranslator, upstream: UpstreamClient, model: str
) -> AsyncGenerator[StreamItem, None]:
    """An OpenAI chat stream's chunks as Anthropic events (and the cache verdict first).

    Shared by every backend that reads an OpenAI SSE stream: this module's, and a RunPod
    endpoint's OpenAI route.
    """
    name = upstream.backend
    verdict = verdict_from_headers(response.headers)
    if verdict is not None:
        yield verdict
    async for event in response.events():
        data = event.data.strip()
        if not data:
            continue
        if data == "[DONE]":
            await response.drain()
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProtocolError(name, "sent a stream chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise ProtocolError(name, "sent a stream chunk that is not a JSON object")
        if "error" in chunk:
            raise upstream.payload_error(chunk["error"], model=model)
        if verdict is None:  # the ccrelay worker's first chunk carries it
            verdict = _verdict_field(chunk)
            if verdict is not None:
                yield verdict
        for out in translator.feed(chunk):
            yield out


_PROBE_MAX_TOKENS = 16


def probe(request: dict[str, Any]) -> bool:
    """A request with a tiny ``max_tokens`` (Claude Code probes with 1)."""
    limit = request.get("max_tokens")
    return isinstance(limit, int) and not isinstance(limit, bool) and limit < _PROBE_MAX_TOKENS


def edited(
    request: dict[str, Any], options: RequestOptions, backend: Backend[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The request with its ``context_management`` edits applied as Anthropic applies them
    server-side (no OpenAI-style upstream can), the backend's own tool clearing among them
    (`ccrelay.backends.context_policy`), and the ``applied_edits`` to report."""
    request = with_tool_clearing(request, backend)
    return apply_context_management(
        request, count_tokens=estimate_tokens, input_tokens=options.prompt_tokens
    )


def with_applied(item: StreamItem, applied: list[dict[str, Any]] | None) -> StreamItem:
    """A stream's ``message_delta`` with ``context_management.applied_edits`` at its top
    level, where Anthropic puts it; every other item as it is."""
    if applied is None or not isinstance(item, dict) or item.get("type") != "message_delta":
        return item
    return {**item, "context_management": {"applied_edits": applied}}


def reported_window(entry: dict[str, Any]) -> int | None:
    """A model entry's context window, as servers name it: the ccrelay worker's
    ``context_window``, vLLM's ``max_model_len``, OpenRouter's and LM Studio's
    ``context_length``."""
    for key in ("context_window", "max_model_len", "context_length"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def pick_model(models: list[ModelInfo], preferred: tuple[str, ...], backend: str) -> str:
    """The first listed model matching the first pattern that matches any; else the first."""
    ids = [m.id for m in models]
    for pattern in preferred:
        for model in ids:
            if fnmatch.fnmatchcase(model, pattern):
                return model
    if not ids:
        raise CcrelayError(
            f"backend {backend!r} lists no models (GET /models is empty): set `model` for it"
        )
    return ids[0]


def _verdict_field(reply: Any) -> CacheVerdict | None:
    """The ccrelay worker's verdict field on a completion or a stream's first chunk."""
    return CacheVerdict.parse(reply.get(CACHE_VERDICT_FIELD)) if isinstance(reply, dict) else None
