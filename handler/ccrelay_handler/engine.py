"""``OllamaEngine``: the worker's inference engine, Ollama's OpenAI-compatible API on loopback.

Stream events are decoded with ``ccrelay_wire.sse.SSEDecoder`` (pure, dependency-free).  One
``aiohttp.ClientSession`` for the process: injected, or created lazily inside the running
loop on first use and reused (closed by ``aclose``).  Streams are read incrementally and each
chunk is yielded as it arrives.  aiohttp and HTTP failures are translated here, at the
boundary, into the ``EngineError`` branch of ``ccrelay_handler.errors`` carrying Ollama's own message.

Two things current Ollama does that shape this module (ollama/ollama at v0.33.0-rc2):

- an error after a stream began is not reported on the wire: Ollama's writer turns its native
  ``{"error"}`` line into one empty chunk with ``"model": ""`` and ends the stream without a
  finish chunk or ``[DONE]`` (``middleware/openai.go`` ``ChatWriter``); the reason is only in
  Ollama's log. So a stream that ends before ``[DONE]`` is an engine error, named as such;
- a prompt over the context of a GGUF model served by llama-server's own template is a 400
  whose message is llama-server's raw body, ``exceed_context_size_error`` with
  ``n_prompt_tokens`` and ``n_ctx`` (``llm/llama_server.go``): it becomes `PromptTooLong`,
  worded as Anthropic words it, so a client compacts the conversation and retries.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from ccrelay_handler.errors import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    HandlerError,
    PromptTooLong,
)
from ccrelay_wire.sse import SSEDecoder

__all__ = ["OllamaEngine"]

_MAX_ERROR_TEXT = 1000
# aiohttp writes a bytes body in one go (and warns above 1 MiB); bigger bodies go as a stream.
_STREAMED_BODY_BYTES = 1 << 20
_JSON = {"Content-Type": "application/json"}


def _body(payload: dict[str, Any]) -> bytes | io.BytesIO:
    """The JSON body of a request to Ollama (long conversations are several MiB)."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return io.BytesIO(data) if len(data) > _STREAMED_BODY_BYTES else data


def _engine_error(status: int, body: bytes) -> HandlerError:
    """The handler's error for an error answer from Ollama."""
    message = _engine_message(status, body)
    limit = _context_exceeded(message)
    if limit is not None:
        return PromptTooLong(*limit)
    return EngineError(message, status)


def _context_exceeded(message: str) -> tuple[int, int] | None:
    """(prompt tokens, context) when ``message`` is llama-server's exceed_context_size_error."""
    if "exceed_context_size_error" not in message:
        return None
    try:
        error = json.loads(message).get("error")
        return int(error["n_prompt_tokens"]), int(error["n_ctx"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _engine_message(status: int, body: bytes) -> str:
    """Ollama's error text from an error body (OpenAI shape, native shape, or plain text)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_TEXT] or f"HTTP {status} with an empty body"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:_MAX_ERROR_TEXT]
    if isinstance(error, str) and error:
        return error[:_MAX_ERROR_TEXT]
    return text[:_MAX_ERROR_TEXT]


def _cut_short(last: dict[str, Any] | None) -> str:
    """Why a stream ended before ``[DONE]``, from its last chunk."""
    if last is not None and last.get("model") == "" and last.get("choices"):
        return (
            "Ollama reported an error part way through the answer and stopped; the reason is "
            "only in Ollama's log"
        )
    return "the engine's stream ended before [DONE]: the answer was cut off"


class OllamaEngine:
    """Calls Ollama's ``/v1/chat/completions`` (plain and streamed) and ``/v1/models``."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=read_timeout_s
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST a non-streamed chat completion; return Ollama's completion object."""
        body = await self._request("POST", "/v1/chat/completions", {**payload, "stream": False})
        if not isinstance(body, dict) or "choices" not in body:
            raise EngineError("the engine answered without 'choices'")
        return body

    async def models(self) -> dict[str, Any]:
        """Ollama's ``GET /v1/models`` list, passed through."""
        body = await self._request("GET", "/v1/models", None)
        if not isinstance(body, dict):
            raise EngineError("the engine's model list is not a JSON object")
        return body

    async def stream(self, payload: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """POST a streamed chat completion; yield each ``chat.completion.chunk`` as it arrives.

        Raises ``EngineError`` if the stream carries an error event or ends before ``[DONE]``.
        Closing the generator (or cancelling its consumer) closes the HTTP response, which drops
        the connection, which makes Ollama stop generating.
        """
        url = f"{self.base_url}/v1/chat/completions"
        with self._engine_errors():
            async with self._client().post(
                url, data=_body({**payload, "stream": True}), headers=_JSON, timeout=self._timeout
            ) as response:
                if response.status >= 400:
                    raise _engine_error(response.status, await response.read())
                decoder = SSEDecoder()
                last: dict[str, Any] | None = None
                try:
                    async for raw in response.content.iter_any():
                        for event in decoder.feed(raw):
                            if event.data.strip() == "[DONE]":
                                return
                            last = self._chunk(event.data)
                            yield last
                    for event in decoder.flush():
                        if event.data.strip() == "[DONE]":
                            return  # a last [DONE] without its blank line is still complete
                    raise EngineError(_cut_short(last))
                except BaseException:
                    response.close()  # do not drain a half-read stream: drop the connection
                    raise

    @contextmanager
    def _engine_errors(self) -> Iterator[None]:
        """Translate aiohttp's errors talking to the engine into the handler's tree."""
        try:
            yield
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise EngineTimeout("the engine did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise EngineUnavailable(f"cannot reach the engine at {self.base_url}") from exc
        except aiohttp.ClientError as exc:
            raise EngineUnavailable(f"connection to the engine failed: {exc}") from exc

    @staticmethod
    def _chunk(data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise EngineError("the engine sent a stream event that is not JSON") from exc
        if not isinstance(chunk, dict):
            raise EngineError("the engine sent a stream event that is not a JSON object")
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise EngineError(str(message or "the engine reported an error mid-stream"))
        return chunk

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        url = f"{self.base_url}{path}"
        with self._engine_errors():
            body = None if payload is None else _body(payload)
            headers = None if payload is None else _JSON
            async with self._client().request(
                method, url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise _engine_error(response.status, raw)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise EngineError("the engine answered with a body that is not JSON") from exc
