"""The `Backend` strategy every provider implements.

A backend takes the canonical request, an Anthropic Messages request as a dict (what Claude
Code sends), and answers in Anthropic's shapes (`ccrelay.backends.types`). The base class owns
what every provider shares, so a provider file only says how one attempt talks to its service:

- model resolution from config (`BackendSettings.resolve_model`);
- one retry loop (`_retrying`) for plain calls and streams alike, with backoff from
  `ccrelay.http.retry`, never once a stream's first event has been passed on;
- one `Attempt` per try handed to the observer it was built with (latency records, logs);
- a stream's cache verdict: `_stream_once` may yield a `CacheVerdict` among its events (before
  the first one, for the verdict to be known when `open_stream` returns);
- the abilities only some providers have, as methods that say "cannot" by default
  (`count_tokens`, `warm_up`): callers never probe for attributes;
- the upstream client a provider talks through (`upstream_client`): one target shape, one
  secret list, one place that decides the auth header.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import aiohttp

from ccrelay.backends.stream import EventStream
from ccrelay.backends.types import (
    CacheVerdict,
    Completion,
    HealthReport,
    ModelInfo,
    RepairedToolCalls,
    RequestOptions,
    StreamItem,
)
from ccrelay.errors import (
    BackendError,
    CcrelayError,
    StreamInterrupted,
    from_translation,
    outcome_word,
    translation_errors,
)
from ccrelay.http.client import Refusal, UpstreamClient, UpstreamTarget
from ccrelay.http.retry import RetryPolicy, Sleep
from ccrelay.latency.observer import Attempt, AttemptObserver, elapsed_ms
from ccrelay_config.models import BackendSettings, TimeoutSettings
from ccrelay_translate.errors import TranslationError

if TYPE_CHECKING:
    from ccrelay.coldstart.policies import ColdStartPolicies

S = TypeVar("S", bound=BackendSettings)
T = TypeVar("T")


class Backend(ABC, Generic[S]):
    """Abstract provider strategy. Subclasses implement `_complete_once` and `_stream_once`."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[BackendSettings]] = BackendSettings
    default_context_window: ClassVar[int | None] = None
    """The window when neither config nor the server says (None: no check)."""
    scales_to_zero: ClassVar[bool] = False
    """Its workers stop when idle, so a request may wait for one to start (`warm_up`)."""

    def __init__(
        self,
        name: str,
        settings: S,
        session: aiohttp.ClientSession,
        *,
        observer: AttemptObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.settings: S = settings
        self.session = session
        self.observer = observer
        self.retry = RetryPolicy(settings.retry, sleep=sleep, rng=rng)
        self.reported_context_window: int | None = None
        """The window the server reported for our model (its model list, a warm-up)."""
        self.endpoint: str | None = None
        """Where it talks: the base URL of its first upstream client (shown, never a key)."""

    def upstream_client(
        self,
        base_url: str,
        *,
        auth: Literal["bearer", "x-api-key"] = "bearer",
        headers: Mapping[str, str] | None = None,
        timeouts: TimeoutSettings | None = None,
        auth_fix: str = "check the backend's api_key",
        refusal: Refusal | None = None,
    ) -> UpstreamClient:
        """The client this backend talks through: its key in the header the provider reads,
        the configured extra headers, and every secret scrubbed from what comes back."""
        settings = self.settings
        secret = settings.api_key.get_secret_value() if settings.api_key else ""
        merged = {"Accept": "application/json", **(headers or {}), **settings.headers}
        if secret:
            if auth == "bearer":
                merged["Authorization"] = f"Bearer {secret}"
            else:
                merged["x-api-key"] = secret
        if self.endpoint is None:
            self.endpoint = base_url
        target = UpstreamTarget(
            backend=self.name,
            base_url=base_url,
            headers=merged,
            timeouts=timeouts or settings.timeouts,
            secrets=(secret,) if secret else (),
            auth_fix=auth_fix,
            limits=settings.limits,
            refusal=refusal,
        )
        return UpstreamClient(self.session, target)

    # -- the context window -------------------------------------------------------------------

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

    # -- the model ------------------------------------------------------------------------------

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

    # -- what a provider implements -------------------------------------------------------------

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

    async def count_tokens(self, request: dict[str, Any], options: RequestOptions) -> int | None:
        """The exact input tokens of `request`, when the provider can count them; None when
        it cannot (the caller then uses the estimate)."""
        return None

    async def warm_up(self) -> float | None:
        """Start a cold worker now; the seconds until one answered. None: nothing to warm."""
        return None

    def cold_start_policies(
        self, *, gpu_usd_per_s: float, has_fallback: bool
    ) -> ColdStartPolicies | None:
        """The keep-warm, hedging and affinity policies this backend runs under
        (`ccrelay.coldstart`), built for it by the router; None for a backend that never
        starts cold. A backend that returns them also implements `ColdStartEndpoint`."""
        return None

    async def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            models = await self.list_models()
        except CcrelayError as exc:
            return HealthReport(self.name, False, exc.message, elapsed_ms(started))
        return HealthReport(self.name, True, f"{len(models)} models", elapsed_ms(started))

    async def checked_health(self, limit_s: float) -> HealthReport:
        """`health`, bounded: a backend that does not answer within `limit_s` is not healthy."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit_s):
                return await self.health()
        except TimeoutError:
            return HealthReport(
                self.name, False, f"no answer within {limit_s:g} s", elapsed_ms(started)
            )

    async def aclose(self) -> None:
        """Release what the backend holds. The shared session belongs to the caller."""
        return None

    # -- shared behaviour ------------------------------------------------------------------------

    async def complete(self, request: dict[str, Any], options: RequestOptions) -> Completion:
        model = await self.choose_model(request, options)

        async def once(attempt: int, started: float) -> Completion:
            response, cache = await self._complete_once(request, model, options)
            usage = response.get("usage") or {}
            self._record(options, model, attempt, started, usage=usage, cache=cache, status=200)
            return Completion(response, self.name, model, attempt, cache)

        return await self._retrying(options, model, once, streamed=False)

    async def open_stream(self, request: dict[str, Any], options: RequestOptions) -> EventStream:
        """Connect and wait for the first event, retrying until one arrives; then stream."""
        model = await self.choose_model(request, options)

        async def once(attempt: int, started: float) -> EventStream:
            events = self._stream_once(request, model, options)
            cache: str | None = None
            try:
                item = await anext(events)
                while isinstance(item, CacheVerdict | RepairedToolCalls):
                    if isinstance(item, CacheVerdict):
                        cache = item.value
                    item = await anext(events)  # no repair can come before an event
            except StopAsyncIteration:
                raise StreamInterrupted(self.name, "the stream ended before any event") from None
            ttfb_ms = elapsed_ms(started)

            def attempt_end(error: BaseException | None, stream: EventStream) -> None:
                self._record(
                    options,
                    model,
                    attempt,
                    started,
                    error=error,
                    usage=stream.usage,
                    cache=stream.cache,
                    status=200,  # the stream's headers came: whatever broke, broke after them
                    ttfb_ms=ttfb_ms,
                    streamed=True,
                    repaired_tool_calls=stream.repaired_tool_calls,
                )

            return EventStream(
                self.name, model, attempt, item, events, cache=cache, attempt_end=attempt_end
            )

        return await self._retrying(options, model, once, streamed=True)

    async def _retrying(
        self,
        options: RequestOptions,
        model: str,
        once: Callable[[int, float], Awaitable[T]],
        *,
        streamed: bool,
    ) -> T:
        """Run `once(attempt, started)` until it succeeds or its error may not be retried."""
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                try:
                    return await once(attempt, started)
                except TranslationError as untranslatable:
                    raise from_translation(untranslatable, self.name) from None
            except BackendError as exc:
                self._record(options, model, attempt, started, error=exc, streamed=streamed)
                delay = self.retry.delay_for(attempt, exc)
                if delay is None:
                    exc.attempts = attempt
                    raise
                options.tally.backoff_ms += delay * 1000
                await self.retry.sleep(delay)

    def _record(
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
        repaired_tool_calls: int = 0,
    ) -> None:
        if self.observer is None:
            return
        if error is not None:
            outcome = outcome_word(error)
            # a status only when an HTTP answer came: a refused connection has none
            if isinstance(error, CcrelayError) and error.upstream_status is not None:
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
                latency_ms=elapsed_ms(started),
                ttfb_ms=ttfb_ms,
                tokens_in=usage.get("input_tokens"),
                tokens_out=usage.get("output_tokens"),
                cache=cache,
                streamed=streamed,
                route=options.route,
                cache_read_tokens=usage.get("cache_read_input_tokens"),
                cache_write_tokens=usage.get("cache_creation_input_tokens"),
                repaired_tool_calls=repaired_tool_calls,
            )
        )
