"""The circuit breaker's state machine, on an injected clock, with late (stale) results."""

from __future__ import annotations

from ccrelay.routing.breaker import CircuitBreaker, CircuitState, Ticket
from ccrelay_config.models import CircuitSettings
from tests.client.conftest import Clock


def breaker(threshold: int = 3, cooldown: float = 30.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock(1000.0)
    settings = CircuitSettings(failure_threshold=threshold, cooldown_s=cooldown)
    return CircuitBreaker(settings, clock=clock), clock


def admit(b: CircuitBreaker) -> Ticket:
    ticket = b.allow()
    assert ticket is not None
    return ticket


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.record_failure(admit(b))


def test_opens_after_consecutive_failures_only() -> None:
    b, _ = breaker(threshold=3)
    fail(b, 2)
    b.record_success(admit(b))  # resets the count
    fail(b, 2)
    assert b.state is CircuitState.CLOSED
    assert b.allow() is not None
    fail(b)
    assert b.state is CircuitState.OPEN
    assert b.allow() is None


def test_half_open_after_cooldown_lets_exactly_one_probe() -> None:
    b, clock = breaker(threshold=1, cooldown=30)
    fail(b)
    assert b.seconds_until_probe() == 30
    clock.now += 29.9
    assert b.allow() is None
    assert 0 < b.seconds_until_probe() < 0.2
    clock.now += 0.1
    probe = admit(b)
    assert probe.probe
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow() is None  # the probe is in flight
    b.record_success(probe)
    assert b.state is CircuitState.CLOSED
    assert b.failures == 0
    assert b.allow() is not None
    assert b.allow() is not None


def test_failed_probe_opens_again_for_a_full_cooldown() -> None:
    b, clock = breaker(threshold=5, cooldown=10)
    fail(b, 5)
    clock.now += 10
    b.record_failure(admit(b))  # one failure in half-open is enough
    assert b.state is CircuitState.OPEN
    assert b.seconds_until_probe() == 10
    assert b.allow() is None


def test_released_probe_lets_the_next_request_probe() -> None:
    b, clock = breaker(threshold=1, cooldown=1)
    fail(b)
    clock.now += 1
    b.release(admit(b))  # the caller's own fault: says nothing about the backend
    assert b.state is CircuitState.HALF_OPEN
    assert admit(b).probe


def test_a_slow_success_admitted_while_closed_cannot_close_a_circuit_opened_meanwhile() -> None:
    b, _ = breaker(threshold=2)
    slow = admit(b)  # a long stream, admitted while closed
    fail(b, 2)  # meanwhile the backend fails: open
    assert b.state is CircuitState.OPEN
    b.record_success(slow)  # the slow stream finally completes: stale, dropped
    assert b.state is CircuitState.OPEN
    assert b.allow() is None


def test_a_stale_failure_in_half_open_admits_no_second_probe() -> None:
    b, clock = breaker(threshold=1, cooldown=5)
    stale = admit(b)  # admitted while closed
    fail(b)  # open
    clock.now += 5
    probe = admit(b)  # half-open: the probe goes out
    b.record_failure(stale)  # the old request's failure arrives late: dropped
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow() is None  # the probe is still the only one
    b.release(stale)  # a stale release frees nothing either
    assert b.allow() is None
    b.record_success(probe)
    assert b.state is CircuitState.CLOSED


def test_a_stale_release_in_a_later_half_open_frees_nothing() -> None:
    b, clock = breaker(threshold=1, cooldown=5)
    fail(b)
    clock.now += 5
    first_probe = admit(b)
    b.record_failure(first_probe)  # open again
    clock.now += 5
    admit(b)  # the second probe
    b.release(first_probe)
    assert b.allow() is None


def test_closed_breaker_has_no_wait() -> None:
    b, _ = breaker()
    assert b.seconds_until_probe() == 0.0
    assert b.state == "closed"
