"""``ChatService``: Redis before inference, for the RunPod handler and the HTTP mode alike.

Per request: resolve and check the model (allowlist), then by ``cache.mode``

* ``default``: single-flight ``begin`` -> a hit is answered from the stored completion
  (replayed as chunks for a stream); a lease runs Ollama and stores the full completion
  (a stream is assembled as it is passed on), then wakes everyone waiting on it;
* ``no-cache``: run Ollama, store the result, never read;
* ``no-store``: run Ollama, nothing read or written.

Every request logs exactly one line on ``ccrelay.handler``::

    chat cache=hit|miss|bypass key=<12 hex> ms=<elapsed> stream=<bool> coalesced=<bool> outcome=<ok|ErrorType>

``bypass`` means the cache was not consulted: ``no-cache``/``no-store``, or Redis unavailable.
A cancelled request (``CancelledError``, or a stream closed early) stops the Ollama request,
stores nothing, releases the single-flight lock, and re-raises.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from typing import Any

import aiohttp

from ccrelay_handler._requestlog import RequestLog
from ccrelay_handler.cache import ResponseCache, encode_completion
from ccrelay_handler.chunk_relay import FollowLost
from ccrelay_handler.chunks import CompletionAssembler, replay_chunks
from ccrelay_handler.engine import OllamaEngine
from ccrelay_handler.errors import CacheUnavailable, EngineError, ModelNotAllowed
from ccrelay_handler.request import ChatRequest
from ccrelay_handler.settings import HandlerSettings
from ccrelay_handler.singleflight import Follow, Hit, SingleFlight
from ccrelay_handler.store import RedisStore

__all__ = ["ChatService", "StreamVerdict"]

logger = logging.getLogger("ccrelay.handler")


class StreamVerdict:
    """Holds a stream's cache verdict ("hit", "miss" or "bypass") for the caller of `stream`.

    Set before the stream's first chunk is yielded (the verdict is known once the single-flight
    ``begin`` has answered); ``None`` until then.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: str | None = None

    def __repr__(self) -> str:
        return f"StreamVerdict({self.value!r})"


class ChatService:
    """The engine, the response cache and the single-flight, behind three calls."""

    def __init__(
        self,
        settings: HandlerSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        engine: OllamaEngine | None = None,
        store: RedisStore | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or OllamaEngine(
            settings.ollama_host,
            session=session,
            connect_timeout_s=settings.engine_connect_timeout_s,
            read_timeout_s=settings.engine_read_timeout_s,
        )
        self.store = store or RedisStore(settings)
        self.cache = ResponseCache(
            self.store,
            namespace=settings.cache_namespace,
            version=settings.cache_version,
            default_ttl_s=settings.cache_ttl_s,
        )
        self.flight = SingleFlight(
            self.cache,
            self.store,
            lock_ttl_s=settings.lock_ttl_s,
            lock_wait_s=settings.lock_wait_s,
        )

    def resolve_model(self, request: ChatRequest) -> str:
        """The model the request runs on; ``ModelNotAllowed`` outside the allowlist."""
        model = request.model or self.settings.model
        if model not in self.settings.allowed_models:
            raise ModelNotAllowed(model, self.settings.allowed_models)
        return model

    def cache_key(self, request: ChatRequest) -> str:
        return self.cache.key_for(request.key_material(self.resolve_model(request)))

    async def complete(self, request: ChatRequest, *, label: str | None = None) -> dict[str, Any]:
        """A non-streamed ``chat.completion`` for ``request`` (its ``stream`` flag is ignored)."""
        completion, _ = await self.complete_with_verdict(request, label=label)
        return completion

    async def complete_with_verdict(
        self, request: ChatRequest, *, label: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """`complete`, plus the cache verdict ("hit", "miss" or "bypass") for the reply."""
        with RequestLog("chat", stream=False, label=label) as log:
            completion = await self._complete(request, log)
            return completion, log.cache

    async def stream(
        self,
        request: ChatRequest,
        *,
        label: str | None = None,
        verdict: StreamVerdict | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The ``chat.completion.chunk`` objects for ``request``, each yielded as it is ready.

        ``verdict``, when given, receives the cache verdict before the first chunk is yielded.
        """
        with RequestLog("chat", stream=True, label=label) as log:
            async with aclosing(self._stream(request, log)) as chunks:
                async for chunk in chunks:
                    if verdict is not None and verdict.value is None:
                        verdict.value = log.cache  # final once `_stream` yields anything
                    yield chunk

    async def models(self, *, label: str | None = None) -> dict[str, Any]:
        """Ollama's ``/v1/models`` list, narrowed to the allowlist (what this worker serves)."""
        with RequestLog("models", stream=False, label=label):
            listing = await self.engine.models()
        data = listing.get("data")
        if isinstance(data, list):
            allowed = set(self.settings.allowed_models)
            served = [m for m in data if m.get("id") in allowed]
            if self.settings.context_length:  # so a client can keep prompts inside the window
                served = [{**m, "context_window": self.settings.context_length} for m in served]
            listing = {**listing, "data": served}
        return listing

    def warmup(self) -> dict[str, Any]:
        """A warm-up's answer: no inference; what this worker serves, and its window."""
        return {
            "warm": True,
            "model": self.settings.model,
            "context_window": self.settings.context_length,
        }

    async def aclose(self) -> None:
        try:
            await self.engine.aclose()
        finally:
            await self.store.aclose()

    # -- internals -------------------------------------------------------------------------

    def _ttl(self, request: ChatRequest) -> int:
        return request.cache.ttl or self.settings.cache_ttl_s

    async def _store_quietly(self, key: str, completion: dict[str, Any], ttl_s: int) -> None:
        # On CacheUnavailable the store has warned (rate-limited); the answer is still served.
        with suppress(CacheUnavailable):
            await self.cache.put_raw(key, encode_completion(completion), ttl_s)

    async def _complete(self, request: ChatRequest, log: RequestLog) -> dict[str, Any]:
        model = self.resolve_model(request)
        payload = request.engine_payload(model, stream=False)
        mode = request.cache.mode
        if mode == "no-store":
            return await self.engine.complete(payload)
        key = self.cache.key_for(request.key_material(model))
        log.key = self.cache.short(key)
        if mode == "no-cache":
            completion = await self.engine.complete(payload)
            await self._store_quietly(key, completion, self._ttl(request))
            return completion

        outcome = await self.flight.begin(key)
        if isinstance(outcome, Hit):
            log.cache, log.coalesced = "hit", outcome.coalesced
            return outcome.completion
        log.cache = "bypass" if outcome.degraded else "miss"
        try:
            completion = await self.engine.complete(payload)
        except BaseException as exc:
            await outcome.abandon(exc)
            raise
        await outcome.finish(completion, self._ttl(request))
        return completion

    async def _stream(
        self, request: ChatRequest, log: RequestLog
    ) -> AsyncGenerator[dict[str, Any], None]:
        model = self.resolve_model(request)
        payload = request.engine_payload(model, stream=True)
        include_usage = request.include_usage
        mode = request.cache.mode
        if mode == "no-store":
            async with aclosing(self.engine.stream(payload)) as chunks:
                async for chunk in chunks:
                    if include_usage or chunk.get("choices"):
                        yield chunk
            return
        key = self.cache.key_for(request.key_material(model))
        log.key = self.cache.short(key)
        if mode == "no-cache":
            assembler = CompletionAssembler()
            async with aclosing(self.engine.stream(payload)) as chunks:
                async for chunk in chunks:
                    assembler.add(chunk)
                    if include_usage or chunk.get("choices"):
                        yield chunk
            await self._store_quietly(key, assembler.completion(), self._ttl(request))
            return

        while True:
            outcome = await self.flight.begin_stream(key)
            if isinstance(outcome, Hit):
                log.cache, log.coalesced = "hit", outcome.coalesced
                for chunk in replay_chunks(outcome.completion, include_usage=include_usage):
                    yield chunk
                return
            if not isinstance(outcome, Follow):
                break
            log.cache, log.coalesced = "hit", True
            sent = False
            try:
                async with aclosing(outcome.chunks) as followed:
                    async for chunk in followed:
                        if include_usage or chunk.get("choices"):
                            sent = True
                            yield chunk
                return
            except FollowLost as exc:
                if sent:  # part of the answer is out: it cannot be started again
                    raise EngineError(f"{exc}; the answer was cut off") from None
                logger.info("key=%s: %s; running it here instead", log.key, exc)
        log.cache = "bypass" if outcome.degraded else "miss"
        relay = outcome.relay
        assembler = CompletionAssembler()
        try:
            async with aclosing(self.engine.stream(payload)) as chunks:
                async for chunk in chunks:
                    assembler.add(chunk)
                    if relay is not None:
                        relay.publish(chunk)
                    if include_usage or chunk.get("choices"):
                        yield chunk
        except BaseException as exc:  # engine error, CancelledError, or GeneratorExit
            await outcome.abandon(exc)
            raise
        await outcome.finish(assembler.completion(), self._ttl(request))
