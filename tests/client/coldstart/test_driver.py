"""The cold-start driver on the real clock (ccrelay.coldstart.driver).

The endpoint here is a recording stand-in for `ColdStartEndpoint` (ccrelay's own protocol, so
no service is faked): the gateway tests drive the same driver against the fake RunPod. Times
are scaled down: an idle timeout of 1.5 s, a margin of 0.5 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ccrelay.coldstart import ColdStartPolicies, ColdStartSettings, HedgeSettings, WorkerCounts
from ccrelay.coldstart import driver as driver_module
from ccrelay.coldstart.driver import ColdStartDriver
from ccrelay.errors import BackendConnectError
from tests.conftest import eventually


class RecordingEndpoint:
    name = "gpu"

    def __init__(self, *, ready: int = 0, start_s: float = 0.2) -> None:
        self.ready = ready
        self.start_s = start_s
        self.calls: list[tuple[str, Any]] = []
        self.counts_delay = 0.0
        self.counts_fail = False

    async def warm_up(self) -> float | None:
        self.calls.append(("warm_up", None))
        started = time.monotonic()
        await asyncio.sleep(self.start_s)
        self.ready = 1
        return time.monotonic() - started

    async def ping(self, session_id: str | None) -> None:
        self.calls.append(("ping", session_id))

    async def prefill(self, request: dict[str, Any], session_id: str | None) -> None:
        self.calls.append(("prefill", (session_id, request)))

    async def worker_counts(self) -> WorkerCounts | None:
        self.calls.append(("counts", None))
        await asyncio.sleep(self.counts_delay)
        if self.counts_fail:
            raise BackendConnectError(self.name, "cannot reach RunPod's API")
        return WorkerCounts(ready=self.ready)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def make_driver(endpoint: RecordingEndpoint, **hedge: Any) -> ColdStartDriver:
    settings = ColdStartSettings(
        idle_timeout_s=1.5,
        margin_s=0.5,
        hedge=HedgeSettings(probe_when_unsure=False, observe_every_s=0.3, **hedge),
    )
    policies = ColdStartPolicies(settings, gpu_usd_per_s=0.00053, has_fallback=True)
    return ColdStartDriver(endpoint, policies)


REQUEST = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


async def test_a_cold_endpoint_hedges_warms_one_worker_prefills_and_takes_the_session_back() -> (
    None
):
    endpoint = RecordingEndpoint(ready=0)
    driver = make_driver(endpoint)
    try:
        assert driver.state() == "cold"
        first = await driver.plan("s1", REQUEST, 10)
        assert first.backend == "fallback"
        # the counts were read before planning; the worker starts
        assert [kind for kind, _ in driver.decisions] == ["counts", "fallback", "warm_up"]
        assert driver.state() == "warming"
        second = await driver.plan("s1", REQUEST, 10)  # while the worker starts
        assert second.backend == "fallback"
        driver.answered("s1", backend="fallback", ok=True, fallback_usd=0.01)
        assert [kind for kind, _ in driver.decisions].count("warm_up") == 1  # one worker, not two

        await eventually(lambda: "prefill" in endpoint.kinds(), within=3)
        _kind, (session, request) = endpoint.calls[endpoint.kinds().index("prefill")]
        assert (session, request) == ("s1", REQUEST)  # the session's latest prompt
        assert driver.state() == "warm"
        back = await driver.plan("s1", REQUEST, 10)
        assert back.backend == "self"
    finally:
        await driver.aclose()


async def test_a_warm_endpoint_by_its_counts_serves_the_first_request_itself() -> None:
    endpoint = RecordingEndpoint(ready=1)
    driver = make_driver(endpoint)
    try:
        plan = await driver.plan("s1", REQUEST, 10)
        assert plan.backend == "self"
        assert endpoint.kinds() == ["counts"]
        driver.answered("s1", backend="self", ok=True)
        assert driver.state() == "warm"
        again = await driver.plan("s1", REQUEST, 10)  # an answer within the idle timeout says so
        assert again.backend == "self"
        assert endpoint.kinds() == ["counts"]
    finally:
        await driver.aclose()


async def test_counts_that_do_not_come_in_time_send_the_request_to_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_module, "COUNTS_DEADLINE_S", 0.2)
    endpoint = RecordingEndpoint(ready=1)
    endpoint.counts_delay = 5.0
    driver = make_driver(endpoint)
    try:
        started = time.monotonic()
        plan = await driver.plan("s1", REQUEST, 10)
        assert time.monotonic() - started < 1.0
        assert plan.backend == "fallback"  # unknown, and no late hedge: never probe
    finally:
        await driver.aclose()


async def test_an_unreadable_endpoint_degrades_to_the_fallback_without_raising() -> None:
    endpoint = RecordingEndpoint(ready=1)
    endpoint.counts_fail = True
    driver = make_driver(endpoint)
    try:
        plan = await driver.plan("s1", REQUEST, 10)
        assert plan.backend == "fallback"
    finally:
        await driver.aclose()


async def test_a_warm_up_at_session_start_is_the_one_a_hedged_request_waits_for() -> None:
    endpoint = RecordingEndpoint(ready=0, start_s=0.5)
    driver = make_driver(endpoint)
    try:
        warming = asyncio.create_task(driver.warm_up_now())
        await asyncio.sleep(0.05)
        assert driver.state() == "warming"
        plan = await driver.plan("s1", REQUEST, 10)
        assert plan.backend == "fallback"
        assert plan.jobs == ()  # the session-start warm-up is under way
        elapsed = await warming
        assert elapsed is not None and elapsed >= 0.5
        assert driver.state() == "warm"
        assert endpoint.kinds().count("warm_up") == 1
    finally:
        await driver.aclose()


async def test_keep_warm_pings_the_worker_through_a_pause_of_an_active_session() -> None:
    endpoint = RecordingEndpoint(ready=1)
    driver = make_driver(endpoint)
    try:
        assert (await driver.plan("s1", REQUEST, 10)).backend == "self"
        driver.answered("s1", backend="self", ok=True)
        # the worker would stop 1.5 s after its answer: a ping goes out before that
        await eventually(lambda: ("ping", "s1") in endpoint.calls, within=1.5)
        await asyncio.sleep(1.2)
        assert driver.state() == "warm"  # the pings kept it: the next prompt is not cold
        assert (await driver.plan("s1", REQUEST, 10)).backend == "self"
    finally:
        await driver.aclose()


async def test_closing_stops_the_timer_and_the_jobs_under_way() -> None:
    endpoint = RecordingEndpoint(ready=0, start_s=30)
    driver = make_driver(endpoint)
    await driver.plan("s1", REQUEST, 10)
    assert driver.state() == "warming"
    await asyncio.wait_for(driver.aclose(), 2)
    calls = len(endpoint.calls)
    await asyncio.sleep(0.5)
    assert len(endpoint.calls) == calls
