"""The circuit breaker's state machine, on an injected clock."""

from __future__ import annotations

from ccrelay.breaker import CircuitBreaker, CircuitState
from ccrelay_config.models import CircuitSettings
from tests.client.conftest import Clock


def breaker(threshold: int = 3, cooldown: float = 30.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock(1000.0)
    settings = CircuitSettings(failure_threshold=threshold, cooldown_s=cooldown)
    return CircuitBreaker(settings, clock=clock), clock


def test_opens_after_consecutive_failures_only() -> None:
    b, _ = breaker(threshold=3)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED
    assert b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.allow()


def test_half_open_after_cooldown_lets_exactly_one_probe() -> None:
    b, clock = breaker(threshold=1, cooldown=30)
    b.record_failure()
    assert b.seconds_until_probe() == 30
    clock.now += 29.9
    assert not b.allow()
    assert 0 < b.seconds_until_probe() < 0.2
    clock.now += 0.1
    assert b.allow()
    assert b.state is CircuitState.HALF_OPEN
    assert not b.allow()  # the probe is in flight
    b.record_success()
    assert b.state is CircuitState.CLOSED
    assert b.failures == 0
    assert b.allow()
    assert b.allow()


def test_failed_probe_opens_again_for_a_full_cooldown() -> None:
    b, clock = breaker(threshold=5, cooldown=10)
    for _ in range(5):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()  # one failure in half-open is enough
    assert b.state is CircuitState.OPEN
    assert b.seconds_until_probe() == 10
    assert not b.allow()


def test_released_probe_lets_the_next_request_probe() -> None:
    b, clock = breaker(threshold=1, cooldown=1)
    b.record_failure()
    clock.now += 1
    assert b.allow()
    b.release()  # the caller's own fault: says nothing about the backend
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow()


def test_closed_breaker_has_no_wait() -> None:
    b, _ = breaker()
    assert b.seconds_until_probe() == 0.0
    assert b.state == "closed"
