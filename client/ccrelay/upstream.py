"""One backend's HTTP conversation with its provider: timeouts, status mapping, key scrubbing.

Backends receive the process-wide `aiohttp.ClientSession` (the httpx `transport=` idea) and wrap
it in an `UpstreamClient` bound to their base URL, headers and timeouts. Everything that can go
wrong on the wire is translated here into the `client.errors` tree, and every provider message is
scrubbed of the backend's secrets before it is put into an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from ccrelay.errors import (
    BackendConnectError,
    BackendError,
    ConnectTimeout,
    FirstByteTimeout,
    ProtocolError,
    StreamStalled,
    TotalTimeout,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamInvalidRequest,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamRequestTooLarge,
    UpstreamServerError,
    UpstreamStatusError,
)
from ccrelay.failure_words import describe_connection_error
from ccrelay.retry import parse_retry_after
from ccrelay_config.models import TimeoutSettings, is_secret_header
from ccrelay_wire.sse import ServerSentEvent, SSEDecoder

_MAX_MESSAGE = 500
_MIN_HEADER_SECRET = 6


@dataclass(frozen=True)
class UpstreamTarget:
    """Where and how a backend talks: everything but the session, which is shared."""

    backend: str
    base_url: str
    headers: Mapping[str, str]
    timeouts: TimeoutSettings
    secrets: tuple[str, ...] = ()
    auth_fix: str = "check the backend's api_key"
    """What a 401/403 tells the user to do."""


class UpstreamClient:
    def __init__(self, session: aiohttp.ClientSession, target: UpstreamTarget) -> None:
        self.session = session
        self.target = target
        self._secrets = (*target.secrets, *_header_secrets(target.headers))
        self._client_timeout = aiohttp.ClientTimeout(
            total=None, connect=target.timeouts.connect_s, sock_connect=target.timeouts.connect_s
        )

    @property
    def backend(self) -> str:
        return self.target.backend

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.target.base_url + path

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    async def request_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Send one request and decode its JSON reply; any failure raises a `BackendError`."""
        deadline = timeout_s or self.target.timeouts.total_s
        try:
            async with asyncio.timeout(deadline):
                response = await self._send(method, path, body, headers)
                async with response:
                    if response.status >= 400:
                        raise await self.status_error(response, model)
                    raw = await response.read()
        except TimeoutError as exc:
            if isinstance(exc, BackendError):
                raise
            raise TotalTimeout(self.backend, f"no complete reply within {deadline:g} s") from None
        except aiohttp.ClientError as exc:
            raise self.transport_error(exc) from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProtocolError(
                self.backend, f"answered HTTP {response.status} with a body that is not JSON"
            ) from None

    async def open_sse(
        self,
        path: str,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> SSEResponse:
        """POST and wait for a streaming reply's headers (bounded by first_byte_s)."""
        try:
            response = await self._send("POST", path, body, headers)
        except aiohttp.ClientError as exc:
            raise self.transport_error(exc) from None
        if response.status >= 400:
            async with response:
                raise await self.status_error(response, model)
        if response.content_type != "text/event-stream":
            response.release()
            raise ProtocolError(
                self.backend,
                f"answered a streaming request with {response.content_type or 'no content type'},"
                " not an event stream",
            )
        return SSEResponse(self, response)

    async def _send(
        self, method: str, path: str, body: Any, headers: Mapping[str, str] | None
    ) -> aiohttp.ClientResponse:
        merged = dict(self.target.headers)
        if headers:
            merged.update(headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            merged.setdefault("Content-Type", "application/json")
        first_byte = self.target.timeouts.first_byte_s
        try:
            async with asyncio.timeout(first_byte):
                return await self.session.request(
                    method, self.url(path), data=data, headers=merged, timeout=self._client_timeout
                )
        except aiohttp.ConnectionTimeoutError:
            raise ConnectTimeout(
                self.backend, f"could not connect within {self.target.timeouts.connect_s:g} s"
            ) from None
        except TimeoutError:
            raise FirstByteTimeout(
                self.backend, f"no response headers within {first_byte:g} s"
            ) from None

    def transport_error(self, exc: aiohttp.ClientError) -> BackendError:
        words = describe_connection_error(exc, self._host())
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ConnectTimeout(self.backend, words)
        if isinstance(exc, aiohttp.ClientPayloadError):
            return ProtocolError(self.backend, words)
        return BackendConnectError(self.backend, words)

    def _host(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.target.base_url)
        return parts.netloc

    def payload_error(self, payload: Any, model: str | None = None) -> BackendError:
        """`error_for_payload` for an error event inside a stream, scrubbed of the secrets."""
        return error_for_payload(self.backend, payload, model=model, scrub=self.scrub)

    async def status_error(
        self, response: aiohttp.ClientResponse, model: str | None
    ) -> UpstreamStatusError:
        try:
            text = (await response.read()).decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError):
            text = ""
        return error_for_status(
            self.backend,
            response.status,
            self.scrub(text),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            model=model,
            auth_fix=self.target.auth_fix,
        )


class SSEResponse:
    """An open streaming reply; iterating yields SSE events, bounded by idle and total timeouts."""

    def __init__(self, client: UpstreamClient, response: aiohttp.ClientResponse) -> None:
        self._client = client
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self._opened = time.monotonic()

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        timeouts = self._client.target.timeouts
        backend = self._client.backend
        decoder = SSEDecoder()
        deadline = self._opened + timeouts.total_s
        content = self.response.content
        first = True
        try:
            while True:
                remaining = deadline - time.monotonic()
                wait = min(timeouts.first_byte_s if first else timeouts.idle_s, remaining)
                try:
                    async with asyncio.timeout(wait):
                        chunk = await content.readany()
                except TimeoutError:
                    if remaining <= wait:
                        raise TotalTimeout(
                            backend, f"stream exceeded {timeouts.total_s:g} s"
                        ) from None
                    if first:
                        raise FirstByteTimeout(backend, f"no data within {wait:g} s") from None
                    raise StreamStalled(
                        backend, f"stream stalled: no data for {wait:g} s"
                    ) from None
                except aiohttp.ClientError as exc:
                    raise self._client.transport_error(exc) from None
                if not chunk:
                    break
                first = False
                for event in decoder.feed(chunk):
                    yield event
            for event in decoder.flush():
                yield event
        finally:
            self.close()

    def close(self) -> None:
        self.response.release()


def _header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential-looking header values (configured extra headers included), with and without
    their scheme (`Bearer x` -> also `x`), longest first so a scrub never leaves a tail."""
    found: set[str] = set()
    for name, value in headers.items():
        if not is_secret_header(name):
            continue
        _scheme, _, credential = value.partition(" ")
        for candidate in (value.strip(), credential.strip()):
            if len(candidate) >= _MIN_HEADER_SECRET:  # never scrub "1" out of every message
                found.add(candidate)
    return sorted(found, key=len, reverse=True)


def provider_message(text: str) -> tuple[str, str | None, str | None]:
    """(message, code, param) from the error bodies of Anthropic, OpenAI, Cerebras and RunPod."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.strip()[:_MAX_MESSAGE] or "(empty body)", None, None
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, str):
            return inner[:_MAX_MESSAGE], None, None
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or str(inner)[:_MAX_MESSAGE]
            code = inner.get("code") or inner.get("type")
            param = inner.get("param")
            return str(message)[:_MAX_MESSAGE], _opt_str(code), _opt_str(param)
    return str(data)[:_MAX_MESSAGE], None, None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def error_for_status(
    backend: str,
    status: int,
    text: str,
    *,
    retry_after: float | None = None,
    model: str | None = None,
    auth_fix: str = "check the backend's api_key",
) -> UpstreamStatusError:
    message, code, param = provider_message(text)
    detail = f"HTTP {status}: {message}"
    kwargs: dict[str, Any] = {"upstream_status": status, "retry_after": retry_after}
    model_problem = code in ("model_not_found", "not_found_error") or param == "model"
    if (status in (400, 404) and model_problem) or status == 404:
        asked = f"; model asked for: {model!r}" if model else ""
        return UnknownModelError(
            backend,
            f"{detail}{asked}; list valid models with `ccrelay models --backend {backend}` "
            "and set `model` (or the `models` map) in the config",
            **kwargs,
        )
    if status in (401, 403):
        return UpstreamAuthError(backend, f"{detail}; {auth_fix}", **kwargs)
    if status == 429:
        return UpstreamRateLimited(backend, detail, **kwargs)
    if status in (503, 529):
        return UpstreamOverloaded(backend, detail, **kwargs)
    if status >= 500 or status in (408, 409):
        return UpstreamServerError(backend, detail, **kwargs)
    if status == 413:
        return UpstreamRequestTooLarge(backend, detail, **kwargs)
    return UpstreamInvalidRequest(backend, detail, **kwargs)


def error_for_payload(
    backend: str,
    payload: Any,
    *,
    model: str | None = None,
    scrub: Callable[[str], str] | None = None,
) -> BackendError:
    """An error object that arrived inside a 200 stream (OpenAI and Anthropic both do this).

    Pass the backend's `UpstreamClient.scrub` (or call `UpstreamClient.payload_error`): the
    provider's text may echo the key.
    """
    status = 500
    if isinstance(payload, dict):
        code = payload.get("code") or payload.get("status")
        if isinstance(code, int) and 400 <= code < 600:
            status = code
        elif payload.get("type") in _ANTHROPIC_TYPE_STATUS:
            status = _ANTHROPIC_TYPE_STATUS[payload["type"]]
    text = orjson.dumps({"error": payload}).decode()
    return error_for_status(backend, status, scrub(text) if scrub else text, model=model)


_ANTHROPIC_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
