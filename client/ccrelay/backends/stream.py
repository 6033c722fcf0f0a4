"""`EventStream`: a backend's stream once its first event has arrived.

Up to the first event a stream may be retried and failed over (`Backend.open_stream`); from
then on it belongs to the one backend that produced it, and a failure ends it. The stream
reports how its attempt ended through the callback it was given (the backend's latency
record), then tells everyone who asked with `on_end` (the router's breaker verdict and the
request's summary), in that order: the request's record sums the attempt's.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from ccrelay.backends.types import CacheVerdict, RepairedToolCalls, StreamItem
from ccrelay.errors import (
    BackendError,
    CcrelayError,
    StreamInterrupted,
    Unfinished,
    from_translation,
)
from ccrelay.http.events import RawEvent, encode_event
from ccrelay_translate.errors import TranslationError

__all__ = ["AttemptEnd", "EventStream"]

AttemptEnd = Callable[[BaseException | None, "EventStream"], None]
"""Told once how the stream's attempt ended: the error (None when it completed) and the stream,
whose usage, cache verdict and repairs are then final."""


class EventStream:
    """A stream that has produced its first event. Failures from here on end it, never retry."""

    def __init__(
        self,
        backend: str,
        model: str,
        attempts: int,
        first: dict[str, Any] | RawEvent,
        rest: AsyncIterator[StreamItem],
        *,
        cache: str | None,
        attempt_end: AttemptEnd,
    ) -> None:
        self.backend = backend
        self.model = model
        self.attempts = attempts
        """This backend's tries, the one that produced the stream included."""
        self.cache = cache
        self.usage: dict[str, Any] = {}
        self.completed = False
        self.repaired_tool_calls = 0
        """Tool calls the translation had to close (cut-off or broken arguments)."""
        self._first: dict[str, Any] | RawEvent | None = first
        self._rest = rest
        self._attempt_end = attempt_end
        self._on_end: list[Callable[[BaseException | None], None]] = []
        self._ended = False

    def on_end(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call `callback` once, when the stream is over: None when it completed, else the
        error it broke with (an abandoned stream reports an `Unfinished`). Callbacks run in
        the order they were added."""
        self._on_end.append(callback)

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._attempt_end(error, self)
        for callback in self._on_end:
            callback(error)

    def __aiter__(self) -> AsyncGenerator[dict[str, Any], None]:
        """The events as dicts (a passed-through event is parsed here)."""
        return self._dicts()

    async def _dicts(self) -> AsyncGenerator[dict[str, Any], None]:
        async with aclosing(self._events()) as events:
            async for event in events:
                yield event.event if isinstance(event, RawEvent) else event

    async def wire(self) -> AsyncGenerator[bytes, None]:
        """The events in wire form, for the gateway: passed-through events as they came."""
        async with aclosing(self._events()) as events:
            async for event in events:
                yield event.wire() if isinstance(event, RawEvent) else encode_event(event)

    async def _events(self) -> AsyncGenerator[dict[str, Any] | RawEvent, None]:
        error: BaseException | None = None
        try:
            if self._first is not None:
                first, self._first = self._first, None
                self._track(first)
                yield first
            async for event in self._rest:
                if isinstance(event, CacheVerdict):
                    self.cache = event.value
                    continue
                if isinstance(event, RepairedToolCalls):
                    self.repaired_tool_calls += event.count
                    continue
                self._track(event)
                yield event
        except TranslationError as exc:
            error = from_translation(exc, self.backend)
            raise StreamInterrupted(
                self.backend, f"stream broke after it started: {error.message}"
            ) from error
        except CcrelayError as exc:
            error = exc  # what happened, for the record and the breaker
            if isinstance(exc, BackendError) and not isinstance(exc, StreamInterrupted):
                raise StreamInterrupted(
                    self.backend, f"stream broke after it started: {exc.message}"
                ) from exc
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end(error if error is not None or self.completed else Unfinished())

    def _track(self, item: dict[str, Any] | RawEvent) -> None:
        if isinstance(item, RawEvent):
            if item.payload is None:  # not parsed: not one the records need
                return
            event = item.payload
        else:
            event = item
        kind = event.get("type")
        if kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            self.usage.update({k: v for k, v in usage.items() if v})
        elif kind == "message_delta":
            usage = event.get("usage") or {}
            self.usage.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            self.completed = True

    async def aclose(self) -> None:
        try:
            closer = getattr(self._rest, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            self._end(None if self.completed else Unfinished())
