"""A circuit breaker per backend: stop sending to a backend that keeps failing, probe it later.

closed --(failure_threshold consecutive failures)--> open --(cooldown_s)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open again
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ccrelay_config.models import CircuitSettings


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    settings: CircuitSettings
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probe_in_flight: bool = field(default=False, repr=False)

    def allow(self) -> bool:
        """May a request go to this backend now? In half-open, exactly one probe may."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            if self.clock() - self.opened_at < self.settings.cooldown_s:
                return False
            self.state = CircuitState.HALF_OPEN
            self._probe_in_flight = False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self.state = CircuitState.CLOSED
        self.failures = 0
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        self._probe_in_flight = False
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.settings.failure_threshold:
            self.state = CircuitState.OPEN
            self.opened_at = self.clock()

    def release(self) -> None:
        """A request that neither succeeded nor failed the backend (the caller's own fault)."""
        self._probe_in_flight = False

    def seconds_until_probe(self) -> float:
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.settings.cooldown_s - (self.clock() - self.opened_at))
