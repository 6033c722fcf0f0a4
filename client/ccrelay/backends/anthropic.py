"""Anthropic's Messages API, passed through untouched: plain Claude Code behaviour.

With no `api_key` in the config (and no ``ANTHROPIC_API_KEY`` for the loader to read), the
caller's own credential is used: the API key or the OAuth bearer token Claude Code sends,
forwarded by the gateway unchanged. It goes only where the user's credential may go
(`ccrelay_config.credentials`): Anthropic's own API, a host the config marks
``forward_credentials: true``, or ``ANTHROPIC_BASE_URL_UPSTREAM``. Anywhere else the request
carries no credential, and the refusal says how to give it one. When Anthropic refuses the
caller's own credential, that is the caller's to fix (`CallerCredentialRefused`: a 401 Claude
Code answers by refreshing its login), never a fault of the backend.

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

from pydantic import Field

from ccrelay.backends.base import Backend
from ccrelay.backends.types import ModelInfo, RequestOptions, StreamItem
from ccrelay.errors import (
    BackendError,
    Fault,
    ProtocolError,
    UpstreamAuthError,
)
from ccrelay.http.events import anthropic_events
from ccrelay_config.credentials import ANTHROPIC_BASE_URL, trusts_user_credentials
from ccrelay_config.models import BackendSettings
from ccrelay_translate._common import THINKING_SIGNATURE

ANTHROPIC_VERSION = "2023-06-01"
_CREDENTIALS = ("x-api-key", "authorization")
_FORWARDED = ("anthropic-beta", "anthropic-version", *_CREDENTIALS)


class AnthropicSettings(BackendSettings):
    base_url: str | None = ANTHROPIC_BASE_URL
    anthropic_version: str = ANTHROPIC_VERSION
    forward_credentials: bool | None = Field(
        None,
        description="send the caller's own Anthropic credential (Claude Code's API key or "
        "OAuth token) to base_url when there is no api_key: unset means only to "
        "https://api.anthropic.com",
    )


class CallerCredentialRefused(UpstreamAuthError):
    """Anthropic refused the credential the caller sent (Claude Code's own key or login): the
    caller's to fix, so it is answered 401 as it came, counts against no backend and is not
    failed over."""

    fault = Fault.CALLER
    outcome = "caller_auth_failed"


class AnthropicBackend(Backend[AnthropicSettings]):
    type_name = "anthropic"
    Settings: ClassVar[type[BackendSettings]] = AnthropicSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        base_url = settings.base_url or ANTHROPIC_BASE_URL
        self._has_key = settings.api_key is not None
        self.forwards_caller = not self._has_key and trusts_user_credentials(
            base_url, settings.forward_credentials
        )
        """Whether the caller's own credential goes along (no key of ours, a trusted host)."""
        if self._has_key or self.forwards_caller:
            fix = (
                "set ANTHROPIC_API_KEY (or this backend's api_key) to a valid Anthropic API "
                "key from console.anthropic.com > API Keys"
            )
        else:
            fix = (
                f"give backend {self.name!r} an api_key; Claude Code's own credential is sent "
                f"only to {ANTHROPIC_BASE_URL} unless the backend says forward_credentials: true"
            )
        self.upstream = self.upstream_client(
            base_url,
            auth="x-api-key",
            headers={"anthropic-version": settings.anthropic_version},
            auth_fix=fix,
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
            if lowered in _CREDENTIALS and not self.forwards_caller:
                continue  # our key wins; an untrusted host never gets the caller's
            headers[lowered] = value
        return headers

    def _theirs(self, exc: BackendError, headers: Mapping[str, str]) -> BackendError:
        """A refusal of the caller's own credential is the caller's (`CallerCredentialRefused`)."""
        if not isinstance(exc, UpstreamAuthError) or isinstance(exc, CallerCredentialRefused):
            return exc
        if not any(name in headers for name in _CREDENTIALS):
            return exc
        message = exc.message.removeprefix(f"{self.name}: ")
        said = message.split("; ", 1)[0]  # the provider's words, without our key's fix
        return CallerCredentialRefused(
            self.name,
            f"{said}; Anthropic refused the credential Claude Code sent: sign in again "
            "(claude /login) or check ANTHROPIC_API_KEY",
            upstream_status=exc.upstream_status,
            retry_after=exc.retry_after,
        )

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
        headers = self._headers(options)
        try:
            reply = await self.upstream.request_json(
                "POST",
                "/v1/messages",
                self._body(request, model, stream=False),
                headers=headers,
                model=model,
            )
        except UpstreamAuthError as exc:
            raise self._theirs(exc, headers) from None
        if not isinstance(reply, dict) or reply.get("type") != "message":
            raise ProtocolError(self.name, "the reply is not a Messages response")
        return reply, None

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        """Anthropic's events passed through as they came (`RawEvent`): only the few the
        records and the stream's end need are parsed, the deltas never."""
        headers = self._headers(options)
        try:
            async with self.upstream.stream(
                "/v1/messages",
                self._body(request, model, stream=True),
                headers=headers,
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
        except UpstreamAuthError as exc:
            raise self._theirs(exc, headers) from None

    async def count_tokens(self, request: dict[str, Any], options: RequestOptions) -> int | None:
        """Anthropic's exact count (POST /v1/messages/count_tokens); the gateway uses it."""
        model = self.model_for(request, options)
        body = request if request.get("model") == model else {**request, "model": model}
        headers = self._headers(options)
        try:
            reply = await self.upstream.request_json(
                "POST", "/v1/messages/count_tokens", body, headers=headers, model=model
            )
        except UpstreamAuthError as exc:
            raise self._theirs(exc, headers) from None
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
