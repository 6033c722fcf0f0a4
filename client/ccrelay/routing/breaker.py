"""A circuit breaker per backend: stop sending to a backend that keeps failing, probe it later.

closed --(failure_threshold consecutive failures)--> open --(cooldown_s)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open again

Results arrive late (a stream is judged when it ends, minutes after it was admitted), so every
admission hands out a `Ticket` stamped with the breaker's generation, which moves on at every
change of state. A result whose ticket is from an earlier generation is stale and dropped: a
slow success admitted while closed cannot close a circuit that opened meanwhile, and a stale
failure in half-open neither reopens it nor frees the probe slot for a second probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ccrelay_config.models import CircuitSettings

__all__ = ["CircuitBreaker", "CircuitState", "Ticket"]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request: the generation it was admitted in, and whether it is the probe."""

    generation: int
    probe: bool = False


@dataclass
class CircuitBreaker:
    settings: CircuitSettings
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    generation: int = 0
    _probe_in_flight: bool = field(default=False, repr=False)

    def allow(self) -> Ticket | None:
        """A ticket if a request may go to this backend now; in half-open, one probe only."""
        if self.state is CircuitState.CLOSED:
            return Ticket(self.generation)
        if self.state is CircuitState.OPEN:
            if self.clock() - self.opened_at < self.settings.cooldown_s:
                return None
            self._move(CircuitState.HALF_OPEN)
        if self._probe_in_flight:
            return None
        self._probe_in_flight = True
        return Ticket(self.generation, probe=True)

    def record_success(self, ticket: Ticket) -> None:
        if ticket.generation != self.generation:
            return
        self.failures = 0
        if self.state is CircuitState.HALF_OPEN:
            self._move(CircuitState.CLOSED)

    def record_failure(self, ticket: Ticket) -> None:
        if ticket.generation != self.generation:
            return
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.settings.failure_threshold:
            self._move(CircuitState.OPEN)
            self.opened_at = self.clock()

    def release(self, ticket: Ticket) -> None:
        """A request that neither succeeded nor failed the backend (the caller's own fault, or
        one the caller abandoned): its probe slot, if it held one, is free again."""
        if ticket.probe and ticket.generation == self.generation:
            self._probe_in_flight = False

    def seconds_until_probe(self) -> float:
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.settings.cooldown_s - (self.clock() - self.opened_at))

    def _move(self, state: CircuitState) -> None:
        self.state = state
        self.generation += 1
        self._probe_in_flight = False
        if state is not CircuitState.OPEN:
            self.failures = 0
