"""Anthropic's Messages API, passed through untouched: plain Claude Code behaviour.

With no `api_key` in the config, the caller's own credentials (Claude Code's `x-api-key` or
`Authorization` header, forwarded by the gateway) are used, so the default setup needs no secret
of ours at all.

Streams are passed through byte for byte (`ccrelay.http.events.RawEvent`): only ``message_start``,
``message_delta``, ``message_stop`` and ``error`` are parsed.

One change is made on the way: thinking blocks that ccrelay made from another backend's
reasoning (signature ``ccrelay-unsigned``, after a failover or a ``/model`` switch mid-session)
are dropped from the history, since Anthropic refuses a thinking block it did not sign.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

from ccrelay.backends.base import Backend
from ccrelay.backends.types import ModelInfo, RequestOptions, StreamItem
from ccrelay.errors import ProtocolError
from ccrelay.http.events import anthropic_events
from ccrelay_config.models import BackendSettings
from ccrelay_translate._common import THINKING_SIGNATURE

ANTHROPIC_VERSION = "2023-06-01"
_FORWARDED = ("anthropic-beta", "anthropic-version", "x-api-key", "authorization")


class AnthropicSettings(BackendSettings):
    base_url: str | None = "https://api.anthropic.com"
    anthropic_version: str = ANTHROPIC_VERSION


class AnthropicBackend(Backend[AnthropicSettings]):
    type_name = "anthropic"
    Settings: ClassVar[type[BackendSettings]] = AnthropicSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        self._has_key = settings.api_key is not None
        self.upstream = self.upstream_client(
            settings.base_url or "https://api.anthropic.com",
            auth="x-api-key",
            headers={"anthropic-version": settings.anthropic_version},
            auth_fix=(
                "set ANTHROPIC_API_KEY (or this backend's api_key) to a valid Anthropic API "
                "key from console.anthropic.com > API Keys"
            ),
        )

    def model_for(self, request: Mapping[str, Any], options: RequestOptions) -> str:
        # Pass-through: the request's own model unless the config maps it.
        mapped = options.model_override or self.settings.resolve_model(request.get("model"))
        return mapped or str(request.get("model") or "")

    def _headers(self, options: RequestOptions) -> dict[str, str]:
        headers = {}
        for name, value in options.forward_headers.items():
            lowered = name.lower()
            if lowered not in _FORWARDED:
                continue
            if lowered in ("x-api-key", "authorization") and self._has_key:
                continue  # the configured key wins over the caller's
            headers[lowered] = value
        return headers

    def _body(self, request: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        # Only what must change: a non-streamed request keeps its lack of a `stream` field.
        body = _without_our_thinking(request)
        if request.get("model") != model:
            body = {**body, "model": model}
        if bool(request.get("stream")) != stream:
            body = {**body, "stream": stream}
        return body

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        reply = await self.upstream.request_json(
            "POST",
            "/v1/messages",
            self._body(request, model, stream=False),
            headers=self._headers(options),
            model=model,
        )
        if not isinstance(reply, dict) or reply.get("type") != "message":
            raise ProtocolError(self.name, "the reply is not a Messages response")
        return reply, None

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        """Anthropic's events passed through as they came (`RawEvent`): only the few the
        records and the stream's end need are parsed, the deltas never."""
        async with self.upstream.stream(
            "/v1/messages",
            self._body(request, model, stream=True),
            headers=self._headers(options),
            model=model,
        ) as response:
            events = anthropic_events(
                response.events(),
                backend=self.name,
                error_of=lambda error: self.upstream.payload_error(error, model=model),
            )
            async with aclosing(events):
                async for event in events:
                    yield event
            await response.drain()

    async def count_tokens(self, request: dict[str, Any], options: RequestOptions) -> int | None:
        """Anthropic's exact count (POST /v1/messages/count_tokens); the gateway uses it."""
        model = self.model_for(request, options)
        body = request if request.get("model") == model else {**request, "model": model}
        reply = await self.upstream.request_json(
            "POST",
            "/v1/messages/count_tokens",
            body,
            headers=self._headers(options),
            model=model,
        )
        tokens = reply.get("input_tokens") if isinstance(reply, dict) else None
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise ProtocolError(self.name, "count_tokens did not return input_tokens")
        return tokens

    async def list_models(self) -> list[ModelInfo]:
        reply = await self.upstream.request_json("GET", "/v1/models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise ProtocolError(self.name, "GET /v1/models did not return a `data` list")
        return [
            ModelInfo(str(m["id"]), "anthropic")
            for m in data
            if isinstance(m, dict) and m.get("id")
        ]


def _ours(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "thinking"
        and block.get("signature") == THINKING_SIGNATURE
    )


def _without_our_thinking(request: dict[str, Any]) -> dict[str, Any]:
    """The request without the thinking blocks ccrelay made (a copy only when there are any)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return request
    changed = False
    kept: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if (
            message.get("role") == "assistant"
            and isinstance(content, list)
            and any(_ours(block) for block in content)
        ):
            changed = True
            message = {**message, "content": [b for b in content if not _ours(b)]}
        kept.append(message)
    return {**request, "messages": kept} if changed else request
