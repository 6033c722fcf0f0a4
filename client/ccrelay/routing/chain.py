"""The failover chain: the routed backend, then `fallback` in order, each behind its breaker.

The routing rules (`ccrelay.routing.rules`) pick the first backend and its model. Before a backend is
tried, the prompt's estimate (computed once per request) is held against its context window: a
backend the prompt does not fit is skipped, never sent a prompt to truncate; the long-context
route, when there is one, comes next. When no backend can take it, the request is refused with
``prompt is too long: N tokens > M maximum``, the words Claude Code compacts on.

A backend is skipped while its circuit is open. Failover happens when a backend's retries are
spent, never once a stream has passed an event on: `open_stream` returns only after a first
event, so everything after that belongs to the one backend that produced it.

What a backend's breaker hears is decided by the error's type (`CcrelayError.fault`): a caller
fault (an invalid request, a model the backend does not serve) neither counts against the
backend nor fails over, because every backend would refuse it. A stream is judged when it
*ends*, not at its first event: one that breaks half-way is a failure of its backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ccrelay.backends.base import Backend
from ccrelay.backends.context_policy import tokens_after_edits
from ccrelay.backends.factory import BackendFactory
from ccrelay.backends.stream import EventStream
from ccrelay.backends.types import Completion, RequestOptions
from ccrelay.errors import (
    AllBackendsFailed,
    BackendError,
    CcrelayError,
    CircuitOpenError,
    Fault,
    PromptTooLong,
    translation_errors,
)
from ccrelay.latency.observer import RequestObserver, elapsed_ms
from ccrelay.routing.breaker import CircuitBreaker, CircuitState, Ticket
from ccrelay.routing.rules import Routed, picker_targets, route
from ccrelay.routing.summary import failed, served
from ccrelay_translate.tokens import estimate_tokens

if TYPE_CHECKING:  # a driver is made only for a scale-to-zero backend: imported then
    from ccrelay.coldstart.driver import ColdStartDriver

__all__ = ["Router", "Served", "TokenCount"]

log = logging.getLogger("ccrelay.router")

T = TypeVar("T", Completion, EventStream)

DEFAULT_GPU_USD_PER_S = 0.00053
"""What a warm worker costs when the price table says nothing: RunPod's flex price of a 48 GB
L40S / RTX 6000 Ada, the card the image is sized for (RunPod's serverless pricing page)."""


@dataclass(frozen=True)
class Served(Generic[T]):
    """What the router hands back: the backend's result, and what the chain knows about it.

    The backend built `result` and the router never changes it; how the request got there
    (its rule, its tries across the whole chain, its failovers) is said here.
    """

    result: T
    backend_type: str
    route: str
    attempts: int
    """Tries across the whole chain, the successful one included."""
    failovers: int
    hedged: bool = False
    """Answered by a fallback because the self-hosted endpoint had no worker ready."""

    @property
    def backend(self) -> str:
        return self.result.backend

    @property
    def model(self) -> str:
        return self.result.model

    @property
    def cache(self) -> str | None:
        return self.result.cache  # a stream may learn its verdict as it goes


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    exact: bool
    """Counted by the backend (Anthropic's count_tokens), not estimated."""
    backend: str


class Router:
    def __init__(
        self,
        factory: BackendFactory,
        *,
        clock: Callable[[], float] = time.monotonic,
        observer: RequestObserver | None = None,
    ) -> None:
        self.factory = factory
        self.observer = observer
        """Told once per client request how it went (`RequestSummary`), beside the attempts."""
        self.config = factory.config
        self.pickers = picker_targets(self.config)
        """The ids ``GET /v1/models`` lists for Claude Code's picker -> (backend, model)."""
        self._clock = clock
        self.cold_starts: dict[str, ColdStartDriver | None] = {}
        """Each scale-to-zero backend's cold-start driver (None: the backend never starts cold)."""
        self.breakers = {
            name: CircuitBreaker(settings.circuit, clock=clock)
            for name, settings in self.config.backends.items()
        }

    def chain(self, first: str | None = None) -> list[str]:
        if first is not None:
            self.factory.get(first)  # unknown names fail here, with the known ones listed
        return self.config.chain(first)

    def route(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> tuple[Routed, RequestOptions]:
        """The routing decision, and the options with the prompt's estimate filled in.

        The estimate is made once, and only when something depends on it: a ``long_context``
        rule, or a backend in the chain with a known window. Otherwise it is left to the few
        places that want it anyway (``count_tokens``, a stream's opening usage).
        """
        if backend is not None:
            self.factory.get(backend)  # an unknown name fails here, with the known ones listed
        tokens = options.prompt_tokens
        if tokens is None and self._needs_estimate():
            with translation_errors():
                tokens = estimate_tokens(request)
            options = replace(options, prompt_tokens=tokens)
        routed = route(
            request,
            self.config,
            header_backend=backend,
            prompt_tokens=tokens,
            pickers=self.pickers,
            request_class=options.request_class,
            agent_type=options.agent_type,
        )
        return routed, options

    def _needs_estimate(self) -> bool:
        if self.config.routing.long_context is not None:
            return True
        return any(
            self.factory.get(name).prompt_limit() is not None for name in self.config.backends
        )

    def _type_of(self, backend: str) -> str:
        settings = self.config.backends.get(backend)
        return settings.type if settings is not None else ""

    async def complete(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> Served[Completion]:
        result, options, started = await self._routed(
            request, options, backend, lambda b, o: b.complete(request, o), streamed=False
        )
        if self.observer is not None:
            usage = result.result.response.get("usage") or {}
            self.observer.on_request(
                served(request, options, started, result, usage, ttfb_ms=None, error=None)
            )
        return result

    async def open_stream(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> Served[EventStream]:
        result, options, started = await self._routed(
            request, options, backend, lambda b, o: b.open_stream(request, o), streamed=True
        )
        observer = self.observer
        if observer is not None:
            ttfb = elapsed_ms(started)
            stream = result.result

            def reported(error: BaseException | None) -> None:
                observer.on_request(
                    served(request, options, started, result, stream.usage, ttfb, error)
                )

            stream.on_end(reported)
        return result

    async def count_tokens(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> TokenCount:
        """The request's input tokens on the backend it would be routed to: that backend's
        exact count when it has one and its circuit is not open, else the estimate."""
        routed, options = self.route(request, options, backend)
        name = routed.chain[0]
        chosen = self.factory.get(name)
        options = replace(options, model_override=routed.models.get(name))
        exact = None
        if self.breakers[name].state is not CircuitState.OPEN:
            try:
                exact = await chosen.count_tokens(request, options)
            except BackendError as exc:
                if exc.fault in (Fault.CALLER, Fault.CONFIG):
                    raise  # the caller's request or our credentials are wrong: say so
                log.info(
                    "count_tokens on %s failed (%s); answering the estimate", name, exc.outcome
                )
        if exact is not None:
            return TokenCount(exact, True, name)
        return TokenCount(chosen.prompt_tokens(request, options), False, name)

    async def _routed(
        self,
        request: dict[str, Any],
        options: RequestOptions,
        backend: str | None,
        call: Callable[[Backend[Any], RequestOptions], Awaitable[T]],
        *,
        streamed: bool,
    ) -> tuple[Served[T], RequestOptions, float]:
        """Route, then run the chain; (what was served, the options as routed, when it started).

        A request that no backend answered (or that was refused before any was tried) is
        summarised here; one that was answered is summarised by the caller.
        """
        started = time.perf_counter()
        rule = None
        try:
            routed, options = self.route(request, options, backend)
            rule = routed.rule
            result = await self._run(request, routed, options, call)
        except BaseException as exc:
            if self.observer is not None:
                tried = exc.backend if isinstance(exc, CcrelayError) else ""
                summary = failed(
                    request,
                    options,
                    started,
                    rule,
                    exc,
                    backend_type=self._type_of(tried),
                    streamed=streamed,
                )
                self.observer.on_request(summary)
            raise
        return result, options, started

    async def _run(
        self,
        request: dict[str, Any],
        routed: Routed,
        options: RequestOptions,
        call: Callable[[Backend[Any], RequestOptions], Awaitable[T]],
    ) -> Served[T]:
        errors: list[BackendError] = []
        hedged_from: ColdStartDriver | None = None
        chain = list(routed.chain)
        models = dict(routed.models)
        tokens = options.prompt_tokens or 0
        too_long: list[int] = []
        long_context = self.config.routing.long_context
        position = -1
        while position + 1 < len(chain):
            position += 1
            name = chain[position]
            backend = self.factory.get(name)
            limit = backend.prompt_limit()
            if limit is not None and tokens > limit and _read(backend, request, tokens) > limit:
                too_long.append(limit)
                log.info(
                    "backend %s: prompt of ~%d tokens > its %d limit; skipped", name, tokens, limit
                )
                if long_context is not None and long_context.backend not in chain[: position + 1]:
                    if long_context.backend in chain:
                        chain.remove(long_context.backend)
                    chain.insert(position + 1, long_context.backend)
                    if long_context.model:
                        models[long_context.backend] = long_context.model
                continue
            cold = self._cold_start(name, backend) if hedged_from is None else None
            if cold is not None:
                plan = await cold.plan(options.session_id, request, options.prompt_tokens)
                fallback = (
                    self._hedge_to(cold, chain, position) if plan.backend == "fallback" else None
                )
                if fallback is not None:
                    log.info("%s has no worker ready: served by %s meanwhile", name, fallback)
                    chain.insert(position + 1, fallback)
                    hedged_from = cold
                    continue
            breaker = self.breakers[name]
            ticket = breaker.allow()
            if ticket is None:
                wait = breaker.seconds_until_probe()
                errors.append(CircuitOpenError(name, f"circuit open; next probe in {wait:.0f} s"))
                continue
            attempt_options = replace(options, model_override=models.get(name), route=routed.rule)
            try:
                result = await call(backend, attempt_options)
            except BackendError as exc:
                self._answered(cold, hedged_from, options, None, ok=False)
                if not exc.counts_against_backend:
                    breaker.release(ticket)
                    exc.attempts += sum(e.attempts for e in errors)
                    raise
                breaker.record_failure(ticket)
                errors.append(exc)
                if position + 1 < len(chain):
                    log.warning("backend %s failed (%s); trying the next one", name, exc.outcome)
                continue
            except BaseException:
                breaker.release(ticket)
                raise
            cold_starts = cold is not None or hedged_from is not None
            if isinstance(result, EventStream):
                result.on_end(_judge(breaker, ticket))
                if cold_starts:
                    result.on_end(self._stream_answered(cold, hedged_from, options, result))
            else:
                breaker.record_success(ticket)
                if cold_starts:
                    usage = result.response.get("usage") or {}
                    self._answered(cold, hedged_from, options, usage, ok=True, model=result.model)
            if errors:
                log.info("served by %s after %d failover(s)", name, len(errors))
            return Served(
                result,
                backend_type=backend.type_name,
                route=routed.rule,
                attempts=result.attempts + sum(e.attempts for e in errors),
                failovers=len(errors),
                hedged=hedged_from is not None,
            )
        if not errors and too_long:
            raise PromptTooLong(tokens, max(too_long))
        if len(errors) == 1 and not isinstance(errors[0], CircuitOpenError):
            raise errors[0]
        raise AllBackendsFailed(errors)

    def states(self) -> dict[str, str]:
        return {name: breaker.state.value for name, breaker in self.breakers.items()}

    # -- cold starts (ccrelay.coldstart) ------------------------------------------------------

    def cold_start(self, name: str) -> ColdStartDriver | None:
        """The cold-start driver of backend `name` (None: it never starts cold)."""
        return self._cold_start(name, self.factory.get(name))

    def _cold_start(self, name: str, backend: Backend[Any]) -> ColdStartDriver | None:
        """The driver of a scale-to-zero backend's policies, built on first use."""
        if name in self.cold_starts:
            return self.cold_starts[name]
        own = self.config.prices.backends.get(name)
        price = own.gpu_usd_per_second if own is not None and own.gpu_usd_per_second else None
        policies = backend.cold_start_policies(
            gpu_usd_per_s=price or DEFAULT_GPU_USD_PER_S,
            has_fallback=len(self.config.chain(name)) > 1,
        )
        driver = None
        if policies is not None:  # such a backend is a ColdStartEndpoint (Backend's contract)
            from ccrelay.coldstart.driver import ColdStartDriver, ColdStartEndpoint

            driver = ColdStartDriver(cast(ColdStartEndpoint, backend), policies, clock=self._clock)
        self.cold_starts[name] = driver
        return driver

    def _hedge_to(self, cold: ColdStartDriver, chain: list[str], position: int) -> str | None:
        """The backend that answers while the worker starts: the hedge's own, else the next
        one of the chain; None when there is none to hedge with."""
        named = cold.policies.settings.hedge.fallback
        if named is not None and named in self.config.backends:
            if named in chain[position + 1 :]:
                chain.remove(named)
            return named
        return chain.pop(position + 1) if position + 1 < len(chain) else None

    def _answered(
        self,
        cold: ColdStartDriver | None,
        hedged_from: ColdStartDriver | None,
        options: RequestOptions,
        usage: dict[str, Any] | None,
        *,
        ok: bool,
        model: str = "",
    ) -> None:
        """Tell the cold-start policies how a request ended: on the endpoint, or on the
        fallback that hedged it (priced, for keep-warm to weigh a cold start against)."""
        if cold is not None:
            cold.answered(options.session_id, backend="self", ok=ok)
        elif hedged_from is not None:
            usage = usage or {}
            cost = self.config.prices.cost(
                model,
                int(usage.get("input_tokens") or 0),
                int(usage.get("output_tokens") or 0),
            )
            hedged_from.answered(options.session_id, backend="fallback", ok=ok, fallback_usd=cost)

    def _stream_answered(
        self,
        cold: ColdStartDriver | None,
        hedged_from: ColdStartDriver | None,
        options: RequestOptions,
        stream: EventStream,
    ) -> Callable[[BaseException | None], None]:
        def ended(error: BaseException | None) -> None:
            ok = error is None
            self._answered(cold, hedged_from, options, stream.usage, ok=ok, model=stream.model)

        return ended

    async def aclose(self) -> None:
        for driver in self.cold_starts.values():
            if driver is not None:
                await driver.aclose()


def _read(backend: Backend[Any], request: dict[str, Any], tokens: int) -> int:
    """What the backend's model reads of a prompt estimated at `tokens`: less the context
    edits it applies (Claude Code's, and its own tool clearing). That, not the whole history
    Claude Code sends, is what must fit its window."""
    with translation_errors(backend.name):
        return tokens_after_edits(backend, request, tokens)


def _judge(breaker: CircuitBreaker, ticket: Ticket) -> Callable[[BaseException | None], None]:
    """How a stream's end reaches its backend's breaker."""

    def judge(error: BaseException | None) -> None:
        if error is None:
            breaker.record_success(ticket)
        elif isinstance(error, CcrelayError) and error.counts_against_backend:
            breaker.record_failure(ticket)
        else:  # abandoned by the caller, cancelled, or the caller's own fault
            breaker.release(ticket)

    return judge
