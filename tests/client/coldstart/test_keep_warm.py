"""Session keep-warm: pings inside the idle timeout, and a hold chosen by price."""

from __future__ import annotations

import math

import pytest

from ccrelay.coldstart import EndpointView, KeepWarmSettings, SessionKeepWarm, best_hold
from ccrelay.coldstart.keep_warm import ENDED

IDLE = 60.0
MARGIN = 5.0


def keep_warm(**kw: object) -> SessionKeepWarm:
    view = EndpointView(IDLE, MARGIN)
    settings = KeepWarmSettings(cold_start_s=50.0, wait_usd_per_s=0.01, **kw)  # type: ignore[arg-type]
    return SessionKeepWarm(settings, view, gpu_usd_per_s=0.001)


def answered(policy: SessionKeepWarm, session: str, now: float) -> None:
    """A request the worker served from `now - 1` to `now`, as the gateway reports it."""
    policy.on_request(session, now - 1, self_hosted=True)
    policy.on_answer(session, now, self_hosted=True)
    policy.view.on_worker_answer(now)


def test_before_it_has_seen_pauses_it_holds_until_the_rent_equals_a_cold_start() -> None:
    policy = keep_warm()
    # B = p*S + wait*S = 0.001*50 + 0.01*50 = 0.55 $; B / p = 550 s
    assert policy.cold_start_usd() == pytest.approx(0.55)
    assert policy.hold_s() == pytest.approx(550)
    policy.set_cold_penalty(0.01)  # what hedged cold starts turned out to cost
    assert policy.hold_s() == pytest.approx(
        60
    )  # (0.05 + 0.01) / 0.001, never below the idle timeout
    policy.on_cold_start(150.0)  # a timed warm-up: starts cost more than thought
    assert policy.cold_start_s == pytest.approx(80.0)
    assert policy.hold_s() == pytest.approx(90)


def test_the_hold_is_capped() -> None:
    policy = keep_warm(max_hold_s=300)
    assert policy.hold_s() == 300


def test_pings_just_inside_the_idle_timeout_while_the_session_is_held() -> None:
    policy = keep_warm()
    answered(policy, "s1", 0.0)
    assert policy.due(54.9) is None
    assert policy.next_at(10.0) == 55.0
    assert policy.due(55.0) == "s1"
    policy.on_ping_sent(55.0)
    assert policy.due(56.0) is None  # one ping at a time
    assert policy.next_at(56.0) == 55.0 + IDLE  # a ping unanswered that long is lost
    policy.on_ping_done()
    policy.view.on_worker_answer(55.3)
    assert policy.next_at(56.0) == pytest.approx(110.3)


def test_pings_stop_once_the_hold_has_passed() -> None:
    policy = keep_warm(max_hold_s=120)
    answered(policy, "s1", 0.0)
    now = 0.0
    pings = []
    while (at := policy.next_at(now)) is not None:
        now = at
        assert policy.due(now) == "s1"
        policy.on_ping_sent(now)
        policy.on_ping_done()
        policy.view.on_worker_answer(now)
        pings.append(now)
    assert pings == [55.0, 110.0]  # the worker then stops at 170, past the 120 s hold
    assert not policy.holding(170.0)


def test_no_ping_while_the_worker_runs_a_request_or_after_it_is_gone() -> None:
    policy = keep_warm()
    answered(policy, "s1", 0.0)
    policy.on_request("s1", 50.0, self_hosted=True)
    assert policy.due(55.0) is None  # the running job keeps the worker up
    policy.on_answer("s1", 70.0, self_hosted=True)
    policy.view.on_worker_answer(70.0)
    assert policy.due(125.0) == "s1"
    assert policy.due(130.0) is None  # 70 + 60: the worker has stopped; pinging would cold-start


def test_a_request_on_the_fallback_does_not_keep_the_worker() -> None:
    policy = keep_warm()
    answered(policy, "s1", 0.0)
    policy.on_request("s1", 10.0, self_hosted=False)
    assert policy.due(55.0) == "s1"
    policy.on_request("s2", 56.0, self_hosted=True)
    policy.on_moved_to_fallback("s2")  # late-hedged: no longer on the worker
    assert policy.holding(56.0)


def test_spells_past_the_idle_timeout_fit_the_hold() -> None:
    policy = keep_warm(min_pauses=3)
    t = 0.0
    for pause in (10, 200, 30, 250, 220, 5):
        answered(policy, "s1", t)
        t += pause
    answered(policy, "s1", t)
    # three spells past the timeout (199, 249, 219: answer to next request): worth covering, as a
    # cold start costs 550 s of rent
    assert policy.hold_s() == 249


def test_a_session_quiet_past_the_longest_hold_counts_as_ended() -> None:
    policy = keep_warm(min_pauses=1, max_hold_s=600)
    answered(policy, "s1", 0.0)
    answered(policy, "s2", 1000.0)  # s1 quiet for 1000 s: it ended
    assert policy.hold_s() == IDLE  # an ended session only ever costs rent
    assert list(policy._sessions) == ["s2"]


def test_sessions_are_bounded() -> None:
    policy = keep_warm(max_sessions=2)
    for n, session in enumerate(("a", "b", "c")):
        answered(policy, session, float(n))
    assert list(policy._sessions) == ["b", "c"]


def test_disabled_never_pings() -> None:
    policy = keep_warm(enabled=False)
    answered(policy, "s1", 0.0)
    assert policy.due(55.0) is None
    assert policy.next_at(55.0) is None


def test_best_hold_minimises_the_summed_cost() -> None:
    # rent 1/s, a cold start 100: holding 100 s covers one spell (cost 100 + 200 = 300)
    # as cheaply as holding 200 s (100 + 200); the shorter wins a tie
    assert best_hold([100, 200], floor_s=60, cap_s=1800, rent=1, buy=100) == 100
    assert best_hold([], floor_s=60, cap_s=1800, rent=1, buy=100) == 60
    assert best_hold([ENDED] * 3, floor_s=60, cap_s=1800, rent=1, buy=1e6) == 60
    many_ended = [500.0] * 5 + [ENDED] * 20
    assert best_hold(many_ended, floor_s=60, cap_s=1800, rent=1, buy=400) == 60
    few_ended = [500.0] * 20 + [ENDED] * 2
    assert (
        best_hold(few_ended, floor_s=60, cap_s=1800, rent=1, buy=400) == 60
    )  # 440 s of rent > 400
    assert best_hold(few_ended, floor_s=60, cap_s=1800, rent=1, buy=1000) == 500
    assert best_hold([5000.0], floor_s=60, cap_s=1800, rent=1, buy=1e6) == 60  # past the cap
    assert not math.isinf(best_hold([ENDED, 300.0], floor_s=60, cap_s=1800, rent=1, buy=1e3))
