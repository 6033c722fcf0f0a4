"""The OpenAI chat-completions protocol, shared by every OpenAI-speaking backend.

`OpenAIChatBackend` turns the canonical Anthropic request into a chat-completions call with
`client.translate`, and the reply (or its SSE chunks) back into Anthropic's shapes. Cerebras and
the generic `openai` backend are thin subclasses that only set defaults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import orjson
from pydantic import Field

from ccrelay.backend import (
    Backend,
    CacheVerdict,
    ModelInfo,
    RequestOptions,
    StreamItem,
)
from ccrelay.errors import CcrelayError, ProtocolError, UpstreamServerError
from ccrelay.translate import (
    OpenAIStreamTranslator,
    anthropic_to_openai_request,
    estimate_tokens,
    openai_to_anthropic_response,
)
from ccrelay.upstream import UpstreamClient, UpstreamTarget
from ccrelay_config.models import BackendSettings
from ccrelay_wire import CACHE_VERDICT_FIELD, CACHE_VERDICT_HEADER


class OpenAIChatSettings(BackendSettings):
    stream_usage: bool = Field(
        True, description="send stream_options.include_usage so streamed usage is real, not 0"
    )
    drop_params: list[str] = Field(
        default_factory=list, description="chat-completions fields this provider rejects"
    )


class OpenAIChatBackend(Backend):
    """Any service speaking OpenAI's /chat/completions and /models."""

    Settings: ClassVar[type[BackendSettings]] = OpenAIChatSettings
    default_base_url: ClassVar[str | None] = None
    always_drop: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base_url = self.settings.base_url or self.default_base_url
        if not base_url:
            raise CcrelayError(f"backend {self.name!r} needs a base_url in the config")
        secret = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        headers = {"Accept": "application/json", **self.settings.headers}
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        self.upstream = UpstreamClient(
            self.session,
            UpstreamTarget(
                backend=self.name,
                base_url=base_url,
                headers=headers,
                timeouts=self.settings.timeouts,
                secrets=(secret,) if secret else (),
                limits=self.settings.limits,
            ),
        )

    def chat_body(self, request: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        settings = self.settings
        assert isinstance(settings, OpenAIChatSettings)
        body = anthropic_to_openai_request(
            request,
            model=model,
            max_tokens_limit=settings.max_tokens_limit,
            stream=stream,
            include_usage=settings.stream_usage,
        )
        for name in (*self.always_drop, *settings.drop_params):
            body.pop(name, None)
        return body

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        body = self.chat_body(request, model, stream=False)
        reply = await self.upstream.request_json("POST", "/chat/completions", body, model=model)
        response = openai_to_anthropic_response(reply, model=model, backend=self.name)
        return response, _cache_flag(reply)

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        body = self.chat_body(request, model, stream=True)
        translator = OpenAIStreamTranslator(model, input_tokens_estimate=estimate_tokens(request))
        async with self.upstream.stream("/chat/completions", body, model=model) as response:
            # The ccrelay worker reports its cache verdict as a header and on the first chunk.
            verdict = CacheVerdict.parse(response.headers.get(CACHE_VERDICT_HEADER))
            if verdict is not None:
                yield verdict
            async for event in response.events():
                data = event.data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    await response.drain()
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise ProtocolError(self.name, "sent a stream chunk that is not JSON") from None
                if not isinstance(chunk, dict):
                    raise ProtocolError(self.name, "sent a stream chunk that is not a JSON object")
                if "error" in chunk:
                    raise self.upstream.payload_error(chunk["error"], model=model)
                if verdict is None:
                    verdict = CacheVerdict.parse(chunk.get(CACHE_VERDICT_FIELD))
                    if verdict is not None:
                        yield verdict
                for out in translator.feed(chunk):
                    yield out
        if not translator.finished_cleanly:
            raise UpstreamServerError(
                self.name,
                "the stream ended before a finish_reason (truncated reply)",
                upstream_status=502,
            )
        for out in translator.finish():
            yield out

    async def list_models(self) -> list[ModelInfo]:
        reply = await self.upstream.request_json("GET", "/models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise ProtocolError(self.name, "GET /models did not return a `data` list")
        return [
            ModelInfo(str(item.get("id")), item.get("owned_by"))
            for item in data
            if isinstance(item, dict) and item.get("id")
        ]


def _cache_flag(reply: Any) -> str | None:
    """A cache verdict when the server reports one (the ccrelay worker adds `x_ccrelay_cache`)."""
    value = reply.get(CACHE_VERDICT_FIELD) if isinstance(reply, dict) else None
    verdict = CacheVerdict.parse(value)
    return verdict.value if verdict is not None else None
