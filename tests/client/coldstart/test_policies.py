"""The policies together, through the calls a gateway makes (ccrelay.coldstart.policies)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccrelay.coldstart import (
    AffinitySettings,
    ColdStartPolicies,
    ColdStartSettings,
    HedgeSettings,
    KeepWarmSettings,
    WarmJob,
    WorkerCounts,
)

SMALL = 2_000
BIG = 60_000


def policies(
    *, keep_warm: bool = True, has_fallback: bool = True, affinity: str = "soft", **hedge: object
) -> ColdStartPolicies:
    settings = ColdStartSettings(
        idle_timeout_s=60,
        margin_s=5,
        keep_warm=KeepWarmSettings(enabled=keep_warm),
        hedge=HedgeSettings(**hedge),  # type: ignore[arg-type]
        affinity=AffinitySettings(mode=affinity),  # type: ignore[arg-type]
    )
    return ColdStartPolicies(settings, gpu_usd_per_s=0.00053, has_fallback=has_fallback)


def served(p: ColdStartPolicies, session: str, now: float, worker: str = "w1") -> None:
    plan = p.plan_request(session, now - 1, prompt_tokens=SMALL)
    assert plan.backend == "self"
    p.on_answer(session, now, backend="self", worker_id=worker)


def test_a_cold_endpoint_sends_the_request_to_the_fallback_and_starts_one_worker() -> None:
    p = policies()
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    first = p.plan_request("s1", 1.0, prompt_tokens=SMALL)
    assert first.backend == "fallback"
    assert [job.kind for job in first.jobs] == ["warm_up"]
    second = p.plan_request("s1", 5.0, prompt_tokens=SMALL)
    assert second.backend == "fallback"
    assert second.jobs == ()  # one warm-up at a time


def test_the_session_returns_once_its_prompt_is_prefilled_on_the_warm_worker() -> None:
    p = policies()
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    (warm_up,) = p.plan_request("s1", 1.0, prompt_tokens=BIG).jobs
    p.on_answer("s1", 3.0, backend="fallback", fallback_usd=0.06)
    assert p.tick(10.0).jobs == ()  # nothing to prefill on while no worker is up
    p.on_job_done(warm_up, 76.0, ok=True, worker_id="w7")
    assert p.keep_warm.cold_start_s == pytest.approx(75.0)  # timed: 75 s, as the prior said
    (prefill,) = p.tick(76.0).jobs
    assert prefill == WarmJob("prefill", "s1", None, 76.0)  # no worker known for s1 yet
    assert p.plan_request("s1", 80.0, prompt_tokens=BIG).backend == "fallback"
    p.on_answer("s1", 82.0, backend="fallback", fallback_usd=0.06)
    p.on_job_done(prefill, 100.0, ok=True, worker_id="w7")
    plan = p.plan_request("s1", 101.0, prompt_tokens=BIG)
    assert (plan.backend, plan.worker_header) == ("self", "w7")


def test_without_prefill_the_session_returns_as_soon_as_a_worker_answered() -> None:
    p = policies(prefill=False)
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    (warm_up,) = p.plan_request("s1", 1.0, prompt_tokens=SMALL).jobs
    p.on_job_done(warm_up, 76.0, ok=True)
    assert p.tick(76.0).jobs == ()
    assert p.plan_request("s1", 77.0, prompt_tokens=SMALL).backend == "self"


def test_a_failed_prefill_is_sent_again() -> None:
    p = policies()
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    (warm_up,) = p.plan_request("s1", 1.0, prompt_tokens=SMALL).jobs
    p.on_job_done(warm_up, 30.0, ok=True)
    (prefill,) = p.tick(30.0).jobs
    assert p.tick(31.0).jobs == ()
    p.on_job_done(prefill, 32.0, ok=False)
    assert [job.kind for job in p.tick(33.0).jobs] == ["prefill"]


def test_a_worker_that_answered_within_the_idle_timeout_serves() -> None:
    p = policies()
    served(p, "s1", 10.0)
    assert p.plan_request("s1", 64.0, prompt_tokens=BIG).backend == "self"


def test_fresh_counts_of_a_ready_worker_send_a_short_prompt_to_it() -> None:
    p = policies()
    p.observe_workers(WorkerCounts(ready=1), 100.0)
    plan = p.plan_request("s1", 105.0, prompt_tokens=SMALL)
    assert (plan.backend, plan.hedge_after_s) == ("self", 2.0)


def test_with_nothing_fresh_a_short_prompt_probes_unless_told_not_to() -> None:
    assert policies().plan_request("s1", 0.0, prompt_tokens=SMALL).backend == "self"
    p = policies(probe_when_unsure=False)
    assert p.plan_request("s1", 0.0, prompt_tokens=SMALL).backend == "fallback"
    p = policies(hedge_after_s=None)  # no late hedge to back a probe
    assert p.plan_request("s1", 0.0, prompt_tokens=SMALL).backend == "fallback"


def test_a_long_prompt_no_live_worker_holds_counts_as_cold() -> None:
    p = policies()
    served(p, "s1", 10.0)
    # a new session on the same warm worker: its 60k tokens are in no cache
    plan = p.plan_request("s2", 20.0, prompt_tokens=BIG)
    assert (plan.backend, plan.jobs) == ("fallback", ())  # the worker is up: prefill, no warm-up
    assert [(job.kind, job.session_id) for job in p.tick(20.0).jobs] == [("prefill", "s2")]
    assert p.plan_request("s1", 21.0, prompt_tokens=BIG).backend == "self"  # s1's prompt is cached
    assert (
        policies(cache_cold_tokens=None).plan_request("s2", 0.0, prompt_tokens=BIG).backend
        == "self"
    )


def test_the_late_hedge_never_moves_a_running_job() -> None:
    p = policies()
    p.plan_request("s1", 0.0, prompt_tokens=SMALL)
    assert p.late_hedge("s1", 2.0, job_running=True) is None
    moved = p.late_hedge("s1", 2.0, job_running=False)
    assert moved is not None
    assert moved.backend == "fallback"
    assert [job.kind for job in moved.jobs] == ["warm_up"]
    assert policies(hedge_after_s=None).late_hedge("s1", 2.0, job_running=False) is None


def test_what_a_cold_start_cost_on_the_fallback_prices_the_keep_warm_hold() -> None:
    p = policies()
    served(p, "s1", 10.0)
    hold_before = p.keep_warm.hold_s()
    p.observe_workers(WorkerCounts(ready=0), 900.0)  # s1 came back after its hold: cold
    (warm_up,) = p.plan_request("s1", 901.0, prompt_tokens=BIG).jobs
    p.on_answer("s1", 903.0, backend="fallback", fallback_usd=0.25)
    p.plan_request("s1", 910.0, prompt_tokens=BIG)
    p.on_job_done(warm_up, 975.0, ok=True)
    (prefill,) = p.tick(975.0).jobs
    p.on_job_done(prefill, 990.0, ok=True)
    assert p.hedge.episode_usd is None  # a fallback answer is still out
    p.on_answer("s1", 995.0, backend="fallback", fallback_usd=0.25)
    assert p.hedge.episode_usd == pytest.approx(0.5)
    assert p.keep_warm.cold_penalty_usd == pytest.approx(0.5)
    assert p.keep_warm.hold_s() != hold_before


def test_a_new_sessions_first_prompt_does_not_price_cold_starts() -> None:
    p = policies()
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    (warm_up,) = p.plan_request("s1", 1.0, prompt_tokens=SMALL).jobs
    p.on_answer("s1", 2.0, backend="fallback", fallback_usd=0.01)
    p.on_job_done(warm_up, 76.0, ok=True)
    (prefill,) = p.tick(76.0).jobs
    p.on_job_done(prefill, 78.0, ok=True)
    assert p.hedge.episode_usd is None  # it was cold whatever keep-warm did


def test_without_a_fallback_everything_goes_to_the_worker() -> None:
    p = policies(has_fallback=False)
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    plan = p.plan_request("s1", 1.0, prompt_tokens=BIG)
    assert (plan.backend, plan.hedge_after_s, plan.jobs) == ("self", None, ())
    assert p.late_hedge("s1", 5.0, job_running=False) is None


def test_a_tick_pings_with_the_sessions_worker_and_reads_counts_when_unsure() -> None:
    p = policies()
    served(p, "s1", 10.0, worker="w3")
    tick = p.tick(11.0)
    assert (tick.jobs, tick.check_workers, tick.next_at) == ((), False, 65.0)
    (ping,) = p.tick(65.0).jobs
    assert ping == WarmJob("ping", "s1", "w3", 65.0)
    p.on_job_done(ping, 65.3, ok=True, worker_id="w3")
    assert p.affinity.header("s1", 120.0) == "w3"  # the ping's answer renewed the mapping


def test_worker_counts_are_read_while_a_session_waits_on_a_cold_endpoint() -> None:
    p = policies(keep_warm=False)
    plan = p.plan_request("s1", 0.0, prompt_tokens=SMALL)
    assert plan.backend == "self"
    tick = p.tick(0.0)
    assert tick.check_workers
    p.observe_workers(WorkerCounts(ready=0, initializing=1), 0.0)
    assert not p.tick(1.0).check_workers
    assert p.tick(1.0).next_at == 10.0
    assert p.tick(10.0).check_workers


def test_a_gone_worker_is_not_named_again() -> None:
    p = policies(affinity="strict")
    served(p, "s1", 10.0, worker="w1")
    assert p.plan_request("s1", 20.0, prompt_tokens=SMALL).worker_header == "strict w1"
    p.on_worker_gone("s1")
    assert p.plan_request("s1", 21.0, prompt_tokens=SMALL).worker_header is None


def test_requests_without_a_session_share_one() -> None:
    p = policies()
    served(p, None, 10.0)  # type: ignore[arg-type]
    assert p.plan_request(None, 11.0, prompt_tokens=SMALL).worker_header == "w1"


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValidationError, match="margin_s must be shorter"):
        ColdStartSettings(idle_timeout_s=5, margin_s=5)
    with pytest.raises(ValidationError):
        ColdStartSettings.model_validate({"keep_warm": {"hold": 3}})
    with pytest.raises(ValidationError):
        AffinitySettings.model_validate({"mode": "sticky"})
    assert ColdStartSettings().affinity.mode == "soft"


def test_sessions_waiting_on_a_worker_that_never_comes_are_bounded() -> None:
    from ccrelay.coldstart.hedge import MAX_SESSIONS

    p = policies()
    p.observe_workers(WorkerCounts(ready=0), 0.0)
    for n in range(MAX_SESSIONS + 5):
        assert p.plan_request(f"s{n}", 1.0, prompt_tokens=SMALL).backend == "fallback"
    assert len(p.hedge.away()) == MAX_SESSIONS
    assert "s0" not in p.hedge.away()
