"""One backend's HTTP conversation with its provider: deadlines, size limits, errors, scrubbing.

Backends receive the process-wide `aiohttp.ClientSession` (the httpx `transport=` idea) and wrap
it in an `UpstreamClient` bound to their base URL, headers, timeouts and limits. This module is
the one place that owns an attempt's deadlines, so no wait is ever unbounded:

- **connect** (``connect_s``): aiohttp's connect timeout;
- **first byte** (``first_byte_s``): until the response headers, and for an error reply until
  its whole (capped) body: a server that sends ``502`` headers and then stalls fails here;
- **idle** (``idle_s``): the longest gap between two reads of the body, streamed or not (the
  first body read may take ``first_byte_s``, as a model may think before its first token);
- **total** (``total_s``, or the caller's ``timeout_s``): the whole attempt.

A reply body is capped at ``limits.max_reply_bytes`` and one streamed event at
``limits.max_event_bytes`` (`ReplyTooLarge`). A connection that breaks while the body is read
is a retryable `ReplyCutOff`: nothing has reached the caller yet. Streams are async context
managers: ``async with client.stream(...) as reply`` releases the connection on every way out.
Every provider message is scrubbed of the backend's secrets before it goes into an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ccrelay.errors import (
    BackendConnectError,
    BackendError,
    ConnectionLost,
    ConnectTimeout,
    FirstByteTimeout,
    ProtocolError,
    ReplyCutOff,
    ReplyTooLarge,
    StreamStalled,
    TotalTimeout,
    UpstreamStatusError,
)
from ccrelay.http.retry import parse_retry_after
from ccrelay.http.statuses import error_for_payload, error_for_status
from ccrelay.http.words import describe_connection_error
from ccrelay_config.models import LimitSettings, TimeoutSettings, is_secret_header
from ccrelay_wire.sse import EventTooLarge, ServerSentEvent, SSEDecoder

__all__ = ["JsonReply", "SSEReply", "UpstreamClient", "UpstreamTarget"]

_MIN_HEADER_SECRET = 6
_MAX_ERROR_BODY = 64 * 1024  # an error reply's text: enough for any provider's message


Refusal = Callable[[str, int, str], UpstreamStatusError | None]
"""(backend, status, scrubbed body text) -> the error this reply really is, or None."""


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
    limits: LimitSettings = field(default_factory=LimitSettings)
    refusal: Refusal | None = None
    """A provider's own error replies that the status alone does not tell apart (RunPod's
    load balancer answers "no workers available" with a 400): checked before the mapping by
    status, so decisions stay on types."""


@dataclass(frozen=True, slots=True)
class JsonReply:
    data: Any
    headers: Mapping[str, str]


class _Deadlines:
    """One attempt's deadlines, on the event loop's clock."""

    __slots__ = ("first_byte", "loop", "timeouts", "total", "total_s")

    def __init__(self, timeouts: TimeoutSettings, total_s: float | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeouts = timeouts
        self.total_s = total_s or timeouts.total_s
        now = self.loop.time()
        self.total = now + self.total_s
        self.first_byte = min(now + timeouts.first_byte_s, self.total)

    def read_wait(self, first: bool) -> tuple[float, bool]:
        """(seconds the next body read may take, whether the total deadline is what limits it)."""
        gap = self.timeouts.first_byte_s if first else self.timeouts.idle_s
        left = self.total - self.loop.time()
        return max(min(gap, left), 0.0), left <= gap


class UpstreamClient:
    def __init__(self, session: aiohttp.ClientSession, target: UpstreamTarget) -> None:
        self.session = session
        self.target = target
        self._secrets = (*target.secrets, *_header_secrets(target.headers))
        self._client_timeout = aiohttp.ClientTimeout(
            total=None, connect=target.timeouts.connect_s, sock_connect=target.timeouts.connect_s
        )
        self._host = urlsplit(target.base_url).netloc

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
        """Send one request and decode its JSON reply; any failure raises a `BackendError`.

        `timeout_s` replaces ``total_s`` for this call (RunPod's polls are short).
        """
        reply = await self.request(
            method, path, body, headers=headers, model=model, timeout_s=timeout_s
        )
        return reply.data

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
    ) -> JsonReply:
        """`request_json`, with the reply's headers (a cache verdict may ride in one)."""
        deadlines = _Deadlines(self.target.timeouts, timeout_s)
        response = await self._open(method, path, body, headers, model, deadlines)
        try:
            raw = await self._read_body(response, deadlines)
        finally:
            response.release()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProtocolError(
                self.backend, f"answered HTTP {response.status} with a body that is not JSON"
            ) from None
        return JsonReply(data, response.headers)

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> AsyncIterator[SSEReply]:
        """POST, wait for a streaming reply's headers, and hold it open for the block.

        Leaving the block, however it is left, gives the connection back (cut off when the
        stream was not read to its end, so the provider stops generating).
        """
        deadlines = _Deadlines(self.target.timeouts, None)
        response = await self._open("POST", path, body, headers, model, deadlines)
        if response.content_type != "text/event-stream":
            response.release()
            raise ProtocolError(
                self.backend,
                f"answered a streaming request with {response.content_type or 'no content type'},"
                " not an event stream",
            )
        reply = SSEReply(self, response, deadlines)
        try:
            yield reply
        finally:
            if reply.finished:
                response.release()
            else:
                response.close()

    # -- the wire -------------------------------------------------------------------------------

    async def _open(
        self,
        method: str,
        path: str,
        body: Any,
        headers: Mapping[str, str] | None,
        model: str | None,
        deadlines: _Deadlines,
    ) -> aiohttp.ClientResponse:
        """The response once its headers are in; an error reply is read and raised here, all
        within the first-byte deadline."""
        merged = dict(self.target.headers)
        if headers:
            merged.update(headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            merged.setdefault("Content-Type", "application/json")
        waited = deadlines.first_byte - deadlines.loop.time()
        stage = "no response headers"
        try:
            async with asyncio.timeout_at(deadlines.first_byte):
                response = await self.session.request(
                    method, self.url(path), data=data, headers=merged, timeout=self._client_timeout
                )
                if response.status < 400:
                    return response
                stage = f"HTTP {response.status} arrived, but not its body,"
                try:
                    text = (await _read_capped(response, _MAX_ERROR_BODY)).decode(
                        "utf-8", "replace"
                    )
                finally:
                    response.release()
        except aiohttp.ConnectionTimeoutError:
            raise ConnectTimeout(
                self.backend, describe_connection_error(TimeoutError(), self._host)
            ) from None
        except aiohttp.ClientError as exc:
            raise self.transport_error(exc) from None
        except TimeoutError:
            raise FirstByteTimeout(self.backend, f"{stage} within {max(waited, 0):.3g} s") from None
        text = self.scrub(text)
        if self.target.refusal is not None:
            refused = self.target.refusal(self.backend, response.status, text)
            if refused is not None:
                raise refused
        raise error_for_status(
            self.backend,
            response.status,
            text,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            model=model,
            auth_fix=self.target.auth_fix,
        )

    async def _read_body(self, response: aiohttp.ClientResponse, deadlines: _Deadlines) -> bytes:
        """The whole body, read under the idle and total deadlines and the size limit."""
        limit = self.target.limits.max_reply_bytes
        if (response.content_length or 0) > limit:
            raise self._too_large(f"a reply of {response.content_length} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await self._read(response, deadlines, first=not chunks)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise self._too_large("a reply")
            chunks.append(chunk)

    async def _read(
        self, response: aiohttp.ClientResponse, deadlines: _Deadlines, *, first: bool
    ) -> bytes:
        """One read of the body ("" at its end), under the right deadline."""
        wait, total_bound = deadlines.read_wait(first)
        try:
            async with asyncio.timeout(wait):
                return await response.content.readany()
        except TimeoutError:
            if total_bound:
                raise TotalTimeout(
                    self.backend, f"the reply took longer than {deadlines.total_s:g} s"
                ) from None
            if first:
                raise FirstByteTimeout(self.backend, f"no reply data within {wait:g} s") from None
            raise StreamStalled(
                self.backend, f"the reply stalled: no data for {wait:g} s"
            ) from None
        except aiohttp.ClientError as exc:  # the reply had begun: it was cut off
            words = describe_connection_error(exc, self._host)
            raise ReplyCutOff(self.backend, words) from None

    def _too_large(self, what: str) -> ReplyTooLarge:
        limits = self.target.limits
        return ReplyTooLarge(
            self.backend,
            f"{what} is larger than limits.max_reply_bytes={limits.max_reply_bytes}; raise the "
            "limit in the backend's config if the reply is genuine",
        )

    def transport_error(self, exc: aiohttp.ClientError) -> BackendError:
        words = describe_connection_error(exc, self._host)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ConnectTimeout(self.backend, words)
        if isinstance(exc, aiohttp.ClientPayloadError):
            return ReplyCutOff(self.backend, words)
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidUrlClientError):
            return BackendConnectError(self.backend, words)
        return ConnectionLost(self.backend, words)

    def payload_error(self, payload: Any, model: str | None = None) -> BackendError:
        """`error_for_payload` for an error event inside a stream, scrubbed of the secrets."""
        return error_for_payload(self.backend, payload, model=model, scrub=self.scrub)


class SSEReply:
    """An open streaming reply; `events` yields its SSE events under the idle/total deadlines."""

    def __init__(
        self, client: UpstreamClient, response: aiohttp.ClientResponse, deadlines: _Deadlines
    ) -> None:
        self._client = client
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self._deadlines = deadlines
        self.finished = False
        """The body was read to its end (the connection can be reused)."""

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        client = self._client
        decoder = SSEDecoder(max_event_size=client.target.limits.max_event_bytes)
        first = True
        try:
            while True:
                chunk = await client._read(self.response, self._deadlines, first=first)
                if not chunk:
                    break
                first = False
                for event in decoder.feed(chunk):
                    yield event
            self.finished = True
            for event in decoder.flush():
                yield event
        except EventTooLarge:
            raise ReplyTooLarge(
                client.backend,
                "a streamed event is larger than limits.max_event_bytes="
                f"{client.target.limits.max_event_bytes}",
            ) from None

    async def drain(self, within_s: float = 1.0) -> None:
        """After the last event: let the body end (so the connection is reused), briefly."""
        if self.finished:
            return
        try:
            async with asyncio.timeout(within_s):
                while await self.response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            return  # the block's exit cuts the connection instead
        self.finished = True


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to `limit` bytes of the body (an error reply's text needs no more)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.readany()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit]


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
