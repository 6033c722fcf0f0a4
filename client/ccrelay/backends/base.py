"""The `Backend` strategy every provider implements, and what it hands back.

A backend takes the canonical request, an Anthropic Messages request as a dict (what Claude Code
sends), and answers in Anthropic's shapes: a Messages response, or a stream of Anthropic SSE event
dicts. The base class owns what every provider shares, so a provider file only says how one
attempt talks to its service:

- model resolution from config (`BackendSettings.resolve_model`);
- retries with backoff (`ccrelay.http.retry`), never once a stream's first event has been passed on;
- one `Attempt` per try handed to an observer (latency records, logs);
- a stream's cache verdict: `_stream_once` may yield a `CacheVerdict` among its events (before
  the first one, for the verdict to be known when `open_stream` returns); the base class takes
  it into `EventStream.cache` and never passes it on.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import aiohttp

from ccrelay.errors import (
    BackendError,
    CcrelayError,
    StreamInterrupted,
    UpstreamStatusError,
    from_translation,
)
from ccrelay.http.events import RawEvent, encode_event
from ccrelay.http.retry import RetryPolicy, Sleep
from ccrelay_config.models import BackendSettings
from ccrelay_translate.errors import TranslationError
from ccrelay_wire import CACHE_VERDICTS


@dataclass
class RequestTally:
    """What one client request spent across its backends: shared by every copy of its
    `RequestOptions` (``dataclasses.replace`` keeps the same object), added to by retries."""

    backoff_ms: float = 0.0


@dataclass(frozen=True)
class RequestOptions:
    """Per-request context that is not part of the Messages body."""

    request_id: str = ""
    forward_headers: Mapping[str, str] = field(default_factory=dict)
    model_override: str | None = None
    prompt_tokens: int | None = None
    """The request's estimated input tokens, computed once (by the router) and reused."""
    route: str = "default"
    """The routing rule that sent the request to this backend (`ccrelay.routing.rules`)."""
    tally: RequestTally = field(default_factory=RequestTally)


@dataclass(frozen=True)
class Attempt:
    """What one try cost and how it ended. Holds no prompt text and no secret."""

    request_id: str
    backend: str
    backend_type: str
    model: str
    attempt: int
    outcome: str
    status: int | None
    latency_ms: float
    ttfb_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache: str | None = None
    streamed: bool = False
    route: str = "default"
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True)
class RequestSummary:
    """What the client got for one request, across retries and failover; no prompt text."""

    request_id: str
    requested_model: str | None
    backend: str
    """The backend that served it, or the last one tried ("" when none was)."""
    backend_type: str
    model: str
    route: str
    outcome: str
    status: int | None
    attempts: int
    failovers: int
    backoff_ms: float
    latency_ms: float
    ttfb_ms: float | None
    streamed: bool
    usage: Mapping[str, Any]
    cache: str | None
    conversation: str
    """Which conversation it continues (session, model, tool and system sizes): what Anthropic's
    prompt cache would have been keyed on, for the baseline estimate. Not the prompt itself."""


@runtime_checkable
class RequestObserver(Protocol):
    def on_request(self, summary: RequestSummary) -> None: ...


@dataclass(frozen=True)
class CacheVerdict:
    """A marker `_stream_once` yields to report the server's cache verdict; never an event."""

    value: str

    @classmethod
    def parse(cls, value: Any) -> CacheVerdict | None:
        """The marker for a reported verdict ("hit", "miss", "bypass"); None for anything else."""
        return cls(value) if isinstance(value, str) and value in CACHE_VERDICTS else None


StreamItem = dict[str, Any] | RawEvent | CacheVerdict
"""What `_stream_once` yields: Anthropic events (dicts, or `RawEvent`s passed through as they
came), and at most a few `CacheVerdict` markers."""


class AttemptObserver(Protocol):
    def on_attempt(self, attempt: Attempt) -> None: ...


@dataclass(frozen=True)
class ModelInfo:
    id: str
    owned_by: str | None = None
    context_window: int | None = None
    """What the server reports (vLLM ``max_model_len``, the ccrelay worker ``context_window``)."""


@dataclass(frozen=True)
class HealthReport:
    backend: str
    ok: bool
    detail: str
    latency_ms: float


@dataclass
class Completion:
    response: dict[str, Any]
    backend: str
    model: str
    attempts: int
    cache: str | None = None
    failovers: int = 0
    route: str = "default"
    """The routing rule that chose the backend (`ccrelay.routing.rules`)."""


class Backend(ABC):
    """Abstract provider strategy. Subclasses implement `_complete_once` and `_stream_once`."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[BackendSettings]] = BackendSettings
    default_context_window: ClassVar[int | None] = None
    """The window when neither config nor the server says (None: no check)."""

    def __init__(
        self,
        name: str,
        settings: BackendSettings,
        session: aiohttp.ClientSession,
        *,
        observer: AttemptObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.settings = settings
        self.session = session
        self.observer = observer
        self.retry = RetryPolicy(settings.retry, sleep=sleep, rng=rng)
        self.reported_context_window: int | None = None
        """The window the server reported for our model (its model list, a warm-up)."""

    @property
    def context_window(self) -> int | None:
        """Config first, then what the server reported, then the type's default."""
        return (
            self.settings.context_window
            or self.reported_context_window
            or self.default_context_window
        )

    def prompt_limit(self) -> int | None:
        """The most input tokens a request may carry here (the window less the output reserve)."""
        window = self.context_window
        if window is None:
            return None
        reserve = self.settings.output_reserve_tokens
        if reserve is None:
            reserve = min(4096, window // 8)
        return max(window - reserve, 1)

    @staticmethod
    def prompt_tokens(request: dict[str, Any], options: RequestOptions) -> int:
        """The router's estimate when it made one (once per request), else one now."""
        if options.prompt_tokens is not None:
            return options.prompt_tokens
        from ccrelay.errors import translation_errors
        from ccrelay_translate.tokens import estimate_tokens

        with translation_errors():
            return estimate_tokens(request)

    def note_models(self, models: list[ModelInfo]) -> None:
        """Keep the window the server reports for the configured model."""
        for info in models:
            if info.context_window and info.id in (self.settings.model, None):
                self.reported_context_window = info.context_window
                return
        windows = {m.context_window for m in models if m.context_window}
        if len(windows) == 1 and not self.settings.model:
            self.reported_context_window = windows.pop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} model={self.settings.model!r}>"

    async def choose_model(self, request: Mapping[str, Any], options: RequestOptions) -> str:
        """The backend model for a request; a backend may ask its server (a catalog)."""
        return self.model_for(request, options)

    def model_for(self, request: Mapping[str, Any], options: RequestOptions) -> str:
        model = options.model_override or self.settings.resolve_model(request.get("model"))
        if not model:
            raise CcrelayError(
                f"backend {self.name!r} has no model: set `model` for it in the config "
                f"(list valid ones with `ccrelay models --backend {self.name}`)"
            )
        return model

    # -- subclass hooks ----------------------------------------------------------------------

    @abstractmethod
    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        """One non-streamed attempt: (Anthropic Messages response, cache "hit"/"miss"/None)."""

    @abstractmethod
    def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        """One streamed attempt: Anthropic event dicts (and, optionally, a `CacheVerdict`)."""

    @abstractmethod
    async def list_models(self) -> list[ModelInfo]: ...

    async def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            models = await self.list_models()
        except CcrelayError as exc:
            return HealthReport(self.name, False, exc.message, _ms(started))
        return HealthReport(self.name, True, f"{len(models)} models", _ms(started))

    async def aclose(self) -> None:
        """Release what the backend holds. The shared session belongs to the caller."""
        return None

    # -- shared behaviour ----------------------------------------------------------------------

    async def complete(self, request: dict[str, Any], options: RequestOptions) -> Completion:
        model = await self.choose_model(request, options)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                try:
                    response, cache = await self._complete_once(request, model, options)
                except TranslationError as untranslatable:
                    raise from_translation(untranslatable, self.name) from None
            except BackendError as exc:
                self._observe(options, model, attempt, started, error=exc)
                delay = self.retry.delay_for(attempt, exc)
                if delay is None:
                    exc.attempts = attempt
                    raise
                options.tally.backoff_ms += delay * 1000
                await self.retry.sleep(delay)
                continue
            usage = response.get("usage") or {}
            self._observe(options, model, attempt, started, usage=usage, cache=cache, status=200)
            return Completion(response, self.name, model, attempt, cache)

    async def open_stream(self, request: dict[str, Any], options: RequestOptions) -> EventStream:
        """Connect and wait for the first event, retrying until one arrives; then stream."""
        model = await self.choose_model(request, options)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            events = self._stream_once(request, model, options)
            cache: str | None = None
            try:
                try:
                    item = await anext(events)
                    while isinstance(item, CacheVerdict):
                        cache = item.value
                        item = await anext(events)
                except TranslationError as untranslatable:  # the generator has ended
                    raise from_translation(untranslatable, self.name) from None
            except StopAsyncIteration:
                exc: BackendError = StreamInterrupted(
                    self.name, "the stream ended before any event"
                )
                self._observe(options, model, attempt, started, error=exc, streamed=True)
                exc.attempts = attempt
                raise exc from None
            except BackendError as exc:
                self._observe(options, model, attempt, started, error=exc, streamed=True)
                delay = self.retry.delay_for(attempt, exc)
                if delay is None:
                    exc.attempts = attempt
                    raise
                options.tally.backoff_ms += delay * 1000
                await self.retry.sleep(delay)
                continue
            stream = EventStream(self, options, model, attempt, started, item, events)
            stream.cache = cache
            return stream

    def _observe(
        self,
        options: RequestOptions,
        model: str,
        attempt: int,
        started: float,
        *,
        error: BaseException | None = None,
        usage: Mapping[str, Any] | None = None,
        cache: str | None = None,
        status: int | None = None,
        ttfb_ms: float | None = None,
        streamed: bool = False,
    ) -> None:
        if self.observer is None:
            return
        if error is not None:
            outcome = outcome_word(error)
            # a status only when an HTTP answer came: a refused connection has none
            if isinstance(error, UpstreamStatusError):
                status = error.upstream_status
        else:
            outcome = "ok"
        usage = usage or {}
        self.observer.on_attempt(
            Attempt(
                request_id=options.request_id,
                backend=self.name,
                backend_type=self.type_name,
                model=model,
                attempt=attempt,
                outcome=outcome,
                status=status,
                latency_ms=_ms(started),
                ttfb_ms=ttfb_ms,
                tokens_in=usage.get("input_tokens"),
                tokens_out=usage.get("output_tokens"),
                cache=cache,
                streamed=streamed,
                route=options.route,
                cache_read_tokens=usage.get("cache_read_input_tokens"),
                cache_write_tokens=usage.get("cache_creation_input_tokens"),
            )
        )


class EventStream:
    """A stream that has produced its first event. Failures from here on end it, never retry."""

    def __init__(
        self,
        backend: Backend,
        options: RequestOptions,
        model: str,
        attempts: int,
        started: float,
        first: dict[str, Any] | RawEvent,
        rest: AsyncIterator[StreamItem],
    ) -> None:
        self.backend = backend.name
        self.model = model
        self.attempts = attempts  # the router adds the attempts its failover spent
        self._attempt = attempts  # this backend's try, as its latency record numbers it
        self.cache: str | None = None
        self.failovers = 0
        self.route = "default"
        self._owner = backend
        self._options = options
        self._started = started
        self._ttfb_ms = _ms(started)
        self._first: dict[str, Any] | RawEvent | None = first
        self._rest = rest
        self.usage: dict[str, Any] = {}
        self.completed = False
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
            ending = error if error is not None or self.completed else Unfinished()
            # the attempt's record first: the request's record (an on_end callback) sums it
            self._owner._observe(
                self._options,
                self.model,
                self._attempt,
                self._started,
                error=ending,
                usage=self.usage,
                cache=self.cache,
                status=200,  # the stream's headers came: whatever broke, broke after them
                ttfb_ms=self._ttfb_ms,
                streamed=True,
            )
            self._end(ending)

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


class Unfinished(Exception):
    """A stream the consumer abandoned before message_stop: not ok, and no one's fault."""

    outcome = "abandoned"


def outcome_word(error: BaseException) -> str:
    """The word a record uses for how something ended with ``error`` (``CcrelayError.outcome``)."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    outcome = getattr(error, "outcome", None)
    return outcome if isinstance(outcome, str) else "error"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
