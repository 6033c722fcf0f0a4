"""The failover chain: the chosen backend, then `fallback` in order, each behind its breaker.

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
from typing import Any, TypeVar

from ccrelay.backend import Backend, Completion, EventStream, RequestOptions
from ccrelay.breaker import CircuitBreaker, Ticket
from ccrelay.errors import AllBackendsFailed, BackendError, CcrelayError, CircuitOpenError
from ccrelay.factory import BackendFactory

log = logging.getLogger("ccrelay.router")

T = TypeVar("T", Completion, EventStream)


class Router:
    def __init__(
        self, factory: BackendFactory, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.factory = factory
        self.config = factory.config
        self.breakers = {
            name: CircuitBreaker(settings.circuit, clock=clock)
            for name, settings in self.config.backends.items()
        }

    def chain(self, first: str | None = None) -> list[str]:
        if first is not None:
            self.factory.get(first)  # unknown names fail here, with the known ones listed
        return self.config.chain(first)

    async def complete(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> Completion:
        return await self._run(backend, lambda b: b.complete(request, options))

    async def open_stream(
        self, request: dict[str, Any], options: RequestOptions, backend: str | None = None
    ) -> EventStream:
        return await self._run(backend, lambda b: b.open_stream(request, options))

    async def _run(self, first: str | None, call: Callable[[Backend], Awaitable[T]]) -> T:
        errors: list[BackendError] = []
        chain = self.chain(first)
        for position, name in enumerate(chain):
            breaker = self.breakers[name]
            ticket = breaker.allow()
            if ticket is None:
                wait = breaker.seconds_until_probe()
                errors.append(CircuitOpenError(name, f"circuit open; next probe in {wait:.0f} s"))
                continue
            backend = self.factory.get(name)
            try:
                result = await call(backend)
            except BackendError as exc:
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
            if isinstance(result, EventStream):
                result.on_end(_judge(breaker, ticket))
            else:
                breaker.record_success(ticket)
            if errors:
                log.info("served by %s after %d failover(s)", name, len(errors))
            result.failovers = len(errors)
            result.attempts += sum(e.attempts for e in errors)  # across the whole chain
            return result
        if len(errors) == 1 and not isinstance(errors[0], CircuitOpenError):
            raise errors[0]
        raise AllBackendsFailed(errors)

    def states(self) -> dict[str, str]:
        return {name: breaker.state.value for name, breaker in self.breakers.items()}


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
