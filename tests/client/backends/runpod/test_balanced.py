"""The runpod backend on a load-balanced endpoint, against the fake load balancer
(tests/fakes/runpod_balancer/) in front of real worker servers: the ccrelay worker's HTTP
mode over a real ChatService (a real redis-server, the fake Ollama), or a scripted one where a
test must hold a worker busy or choose its headers."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anthropic
import pytest
from aiohttp import web
from pydantic import SecretStr

from ccrelay.backends.runpod import RunPodBackend, RunPodSettings
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import RequestTooLarge, TotalTimeout
from ccrelay_config.models import RetrySettings
from tests.conftest import eventually
from tests.fakes.providers import anthropic_message, anthropic_text_events
from tests.fakes.runpod_balancer import (
    WORKER_HEADER,
    FakeLoadBalancer,
    WorkerApp,
    http_mode_worker,
    scripted_worker,
)
from tests.fakes.runpod_jobs import anthropic_sse
from tests.fakes.runpod_rest import FakeRunPod
from tests.stream_check import check_stream

REQUEST: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": []}
WINDOW = 16384

StartBalancer = Callable[..., Any]


@pytest.fixture
def real_worker(make_settings: Any) -> WorkerApp:
    """The ccrelay worker's HTTP mode (one Redis, one Ollama behind every worker)."""
    return http_mode_worker(lambda: make_settings(OLLAMA_CONTEXT_LENGTH=str(WINDOW)))


@pytest.fixture
async def balancers() -> AsyncIterator[StartBalancer]:
    started: list[FakeLoadBalancer] = []

    async def start(worker_app: WorkerApp, **knobs: Any) -> FakeLoadBalancer:
        balancer = await FakeLoadBalancer(worker_app, **knobs).start()
        started.append(balancer)
        return balancer

    try:
        yield start
    finally:
        for balancer in started:
            await balancer.close()


def make_backend(
    balancer: FakeLoadBalancer, session: aiohttp.ClientSession, **overrides: Any
) -> RunPodBackend:
    values: dict[str, Any] = {
        "type": "runpod",
        "endpoint_type": "load_balancer",
        "endpoint_url": balancer.url,
        "api_key": SecretStr(balancer.api_key),
        "retry": RetrySettings(max_attempts=1),
        **overrides,
    }
    return RunPodBackend("rp", RunPodSettings(**values), session)


def options(session_id: str | None = None) -> RequestOptions:
    return RequestOptions(request_id="req_lb", session_id=session_id)


def asking(text: str) -> dict[str, Any]:
    return {**REQUEST, "messages": [{"role": "user", "content": text}]}


# -- affinity -------------------------------------------------------------------------------


async def test_each_session_sticks_to_the_worker_that_served_it_first(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    await balancer.start_workers(2)
    backend = make_backend(balancer, session)
    for turn in range(3):
        for name in ("a", "b"):  # interleaved
            await backend.complete(asking(f"{name} {turn}"), options(f"session-{name}"))
    workers = [r.worker for r in balancer.routed]
    a, b = workers[0::2], workers[1::2]
    assert len(set(a)) == len(set(b)) == 1 and a[0] != b[0], workers
    pins = [r.pin for r in balancer.routed]
    assert pins[:2] == [None, None]  # a session's first request names no worker
    assert pins[2:] == [a[0], b[0]] * 2  # then its own, soft


async def test_without_affinity_a_session_is_spread_over_the_workers(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    """The counterfactual: the same load balancer, no pin, and one session lands everywhere."""
    balancer = await balancers(real_worker)
    await balancer.start_workers(2)
    backend = make_backend(balancer, session, cold_start={"affinity": {"mode": "off"}})
    for turn in range(4):
        await backend.complete(asking(f"turn {turn}"), options("session-a"))
    assert {r.pin for r in balancer.routed} == {None}
    assert len({r.worker for r in balancer.routed}) == 2


async def test_a_gone_worker_under_a_soft_pin_is_replaced_by_the_load_balancer(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    first, second = await balancer.start_workers(2)
    backend = make_backend(balancer, session)
    await backend.complete(asking("one"), options("s"))
    assert balancer.routed[-1].worker == first.id
    await balancer.stop_worker(first.id)  # scaled down
    await backend.complete(asking("two"), options("s"))
    await backend.complete(asking("three"), options("s"))
    assert [(r.pin, r.worker) for r in balancer.routed[1:]] == [
        (first.id, second.id),  # RunPod falls back by itself
        (second.id, second.id),  # and the session follows the worker that answered
    ]


async def test_a_strict_pin_to_a_gone_worker_is_dropped_and_the_request_served_elsewhere(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    first, second = await balancer.start_workers(2)
    backend = make_backend(balancer, session, cold_start={"affinity": {"mode": "strict"}})
    await backend.complete(asking("one"), options("s"))
    await balancer.stop_worker(first.id)
    completion = await backend.complete(asking("two"), options("s"))
    assert completion.response["content"][0]["text"] == "Echo: two"
    await backend.complete(asking("three"), options("s"))
    assert [(r.pin, r.status, r.worker) for r in balancer.routed[1:]] == [
        (f"strict {first.id}", 404, None),  # affinity_worker_gone
        (None, 200, second.id),  # sent again, unpinned
        (f"strict {second.id}", 200, second.id),
    ]


class Gate:
    """A scripted worker whose requests saying "hold" wait until `release`."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def __call__(self, worker_id: str, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = body["messages"][-1]["content"]
        if text == "hold":
            await self.open.wait()
        return web.json_response(anthropic_message(f"{worker_id}: {text}"))


async def test_a_strict_pin_waits_for_its_busy_worker_rather_than_move(
    balancers: StartBalancer, session: aiohttp.ClientSession
) -> None:
    gate = Gate()
    balancer = await balancers(scripted_worker(gate), request_count=1)
    first, _second = await balancer.start_workers(2)
    backend = make_backend(balancer, session, cold_start={"affinity": {"mode": "strict"}})
    await backend.complete(asking("one"), options("s"))
    assert balancer.routed[0].worker == first.id
    held = asyncio.create_task(backend.complete(asking("hold"), options("s")))
    await eventually(lambda: first.in_flight == 1)  # the session's worker is at capacity
    waiting = asyncio.create_task(backend.complete(asking("two"), options("s")))
    await eventually(lambda: len(balancer.routed) == 3)
    assert balancer.routed[2].worker is None  # waiting for its worker, not sent to the free one
    gate.open.set()
    await held
    completion = await waiting
    assert completion.response["content"][0]["text"] == f"{first.id}: two"


async def test_a_strict_pin_busy_past_runpod_s_wait_is_dropped(
    balancers: StartBalancer, session: aiohttp.ClientSession
) -> None:
    gate = Gate()
    balancer = await balancers(scripted_worker(gate), request_count=1, strict_wait_s=0.2)
    first, second = await balancer.start_workers(2)
    backend = make_backend(balancer, session, cold_start={"affinity": {"mode": "strict"}})
    await backend.complete(asking("one"), options("s"))
    held = asyncio.create_task(backend.complete(asking("hold"), options("s")))
    await eventually(lambda: first.in_flight == 1)
    completion = await backend.complete(asking("two"), options("s"))
    assert completion.response["content"][0]["text"] == f"{second.id}: two"
    assert [(r.pin, r.status) for r in balancer.routed[2:]] == [
        (f"strict {first.id}", 400),  # worker_timeout
        (None, 200),
    ]
    gate.open.set()
    await held


async def test_strict_resume_starts_a_scaled_down_worker_again(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker, cold_start_s=0.2)
    first, _second = await balancer.start_workers(2)
    mode = {"affinity": {"mode": "strict-resume"}}
    backend = make_backend(balancer, session, cold_start=mode)
    await backend.complete(asking("one"), options("s"))
    await balancer.stop_worker(first.id)
    await backend.complete(asking("two"), options("s"))
    assert [(r.pin, r.worker) for r in balancer.routed[1:]] == [
        (f"strict-resume {first.id}", first.id)
    ]
    assert first.starts == 2


async def test_a_worker_idle_past_the_endpoint_s_timeout_stops(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    """RunPod scales an idle worker down; the next request of its session starts another."""
    balancer = await balancers(real_worker, idle_timeout_s=0.3)
    backend = make_backend(balancer, session)
    await backend.complete(asking("one"), options("s"))
    first = balancer.workers[0]
    await eventually(lambda: first.state == "stopped")
    await backend.complete(asking("two"), options("s"))
    assert balancer.routed[1].pin == first.id
    assert balancer.routed[1].worker not in (None, first.id)


async def test_a_worker_busy_past_the_idle_timeout_keeps_running(
    balancers: StartBalancer, session: aiohttp.ClientSession
) -> None:
    """Idle means no request: one in flight holds the worker however long it takes."""
    gate = Gate()
    balancer = await balancers(scripted_worker(gate), idle_timeout_s=0.1)
    backend = make_backend(balancer, session)
    held = asyncio.create_task(backend.complete(asking("hold"), options("s")))
    await eventually(lambda: bool(balancer.workers) and balancer.workers[0].in_flight == 1)
    await asyncio.sleep(0.3)  # three idle timeouts
    assert balancer.workers[0].state == "ready"
    gate.open.set()
    await held
    await eventually(lambda: balancer.workers[0].state == "stopped")


async def test_at_max_workers_a_request_waits_for_room_across_no_workers_available(
    balancers: StartBalancer, session: aiohttp.ClientSession
) -> None:
    """Every worker busy and no more allowed: RunPod answers "no workers available" after its
    wait (overview@d81ff9c names MAX_WORKERS), and the backend asks again."""
    gate = Gate()
    balancer = await balancers(
        scripted_worker(gate), max_workers=1, request_count=1, wait_limit_s=0.2
    )
    backend = make_backend(balancer, session, cold_start_timeout_s=30)
    held = asyncio.create_task(backend.complete(asking("hold"), options("a")))
    await eventually(lambda: bool(balancer.workers) and balancer.workers[0].in_flight == 1)
    waiting = asyncio.create_task(backend.complete(asking("next"), options("b")))
    await eventually(lambda: balancer.routed[-1].status == 400)
    gate.open.set()
    await held
    completion = await waiting
    assert completion.response["content"][0]["text"].endswith(": next")
    assert [r.status for r in balancer.routed] == [200, 400, 200]
    assert len(balancer.workers) == 1


# -- cold starts ------------------------------------------------------------------------------


async def test_no_workers_available_is_asked_again_until_a_worker_is_up(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker, cold_start_s=0.6, wait_limit_s=0.3)
    backend = make_backend(balancer, session, cold_start_timeout_s=30)
    completion = await backend.complete(asking("cold"), options("s"))
    assert completion.response["content"][0]["text"] == "Echo: cold"
    assert [r.status for r in balancer.routed] == [400, 200]  # "no workers available", then in
    assert balancer.workers[0].starts == 1


async def test_a_worker_not_up_within_cold_start_timeout_s_is_a_total_timeout(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker, cold_start_s=60, wait_limit_s=0.2)
    backend = make_backend(balancer, session, cold_start_timeout_s=1.5)
    with pytest.raises(TotalTimeout) as caught:
        await backend.complete(asking("cold"), options("s"))
    assert "cold_start_timeout_s=1.5" in caught.value.message
    assert [r.status for r in balancer.routed] == [400, 400]
    assert [w.state for w in balancer.workers] == ["initializing"]


# -- warm-up, health, limits ------------------------------------------------------------------


async def test_the_warm_up_lists_models_and_learns_the_worker_s_window(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    backend = make_backend(balancer, session)
    assert backend.context_window != WINDOW
    assert await backend.warm_up() is not None
    assert backend.context_window == WINDOW
    assert [(r.method, r.path, r.pin, r.status) for r in balancer.routed] == [
        ("GET", "/v1/models", None, 200)
    ]


async def test_health_reads_the_rest_api_s_worker_summary(
    balancers: StartBalancer,
    real_worker: WorkerApp,
    session: aiohttp.ClientSession,
    runpod_rest_server: FakeRunPod,
) -> None:
    balancer = await balancers(real_worker)
    runpod_rest_server.attach_balancer(balancer)
    backend = make_backend(
        balancer, session, endpoint_id=balancer.endpoint_id, rest_url=runpod_rest_server.api_url
    )
    cold = await backend.health()
    assert cold.ok and "scaled to zero" in cold.detail
    await balancer.start_workers(2)
    warm = await backend.health()
    assert warm.ok and warm.detail.startswith("workers: 2 idle, 0 running, 0 initializing")
    call = runpod_rest_server.calls[-1]
    assert call.path == f"/v2/serverless/{balancer.endpoint_id}/workers"
    assert call.authorization == f"Bearer {balancer.api_key}"


async def test_health_is_bad_when_the_only_workers_are_unhealthy(
    balancers: StartBalancer,
    real_worker: WorkerApp,
    session: aiohttp.ClientSession,
    runpod_rest_server: FakeRunPod,
) -> None:
    balancer = await balancers(real_worker)
    worker = {"id": "8g3n5t6r", "isStale": False, "gpuCount": 1}
    scaling = {"type": "REQUEST_COUNT", "requestCount": 4}
    endpoint_id = runpod_rest_server.add_endpoint(name="lb", type="LOAD_BALANCER", scaling=scaling)[
        "id"
    ]
    runpod_rest_server.endpoint_workers[endpoint_id] = [
        {**worker, "status": "UNHEALTHY"},
        {**worker, "id": "9h4p6u7s", "status": "THROTTLED"},
    ]
    backend = make_backend(
        balancer, session, endpoint_id=endpoint_id, rest_url=runpod_rest_server.api_url
    )
    report = await backend.health()
    assert not report.ok
    assert report.detail.startswith(
        "workers: 0 idle, 0 running, 0 initializing, 1 throttled, 1 unhealthy"
    )


async def test_a_body_over_30_mb_is_refused_before_it_is_sent(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    backend = make_backend(balancer, session)
    huge = asking("x" * (31 * 1024 * 1024))
    with pytest.raises(RequestTooLarge) as caught:
        await backend.complete(huge, options("s"))
    assert "30 MB" in caught.value.message
    assert balancer.routed == []
    # what RunPod would do with it (the status is inferred: the docs give only the limit)
    headers = {"Authorization": f"Bearer {balancer.api_key}", "Content-Type": "application/json"}
    data = io.BytesIO(json.dumps(huge).encode())
    async with session.post(balancer.url + "/v1/messages", data=data, headers=headers) as reply:
        assert reply.status == 413
    assert balancer.workers == []


async def test_the_load_balancer_takes_only_the_runpod_key(
    balancers: StartBalancer, real_worker: WorkerApp, session: aiohttp.ClientSession
) -> None:
    balancer = await balancers(real_worker)
    async with session.get(balancer.url + "/v1/models") as reply:
        assert reply.status == 401
        assert WORKER_HEADER not in reply.headers
    assert balancer.workers == []


# -- answers --------------------------------------------------------------------------------


async def test_plain_and_streamed_answers_from_the_real_worker_with_its_cache_verdict(
    balancers: StartBalancer,
    real_worker: WorkerApp,
    session: aiohttp.ClientSession,
    ollama_server: Any,
) -> None:
    balancer = await balancers(real_worker)
    backend = make_backend(balancer, session)
    first = await backend.complete(asking("plain"), options("s"))
    message = anthropic.types.Message.model_validate(first.response)
    assert message.content[0].type == "text" and message.content[0].text == "Echo: plain"
    assert "x_ccrelay_cache" not in first.response
    again = await backend.complete(asking("plain"), options("s"))
    assert (first.cache, again.cache) == ("miss", "hit")
    for verdict in ("miss", "hit"):
        stream = await backend.open_stream(asking("streamed"), options("s"))
        events = [event async for event in stream]
        assert check_stream(events).content[0].text == "Echo: streamed"  # type: ignore[union-attr]
        assert "x_ccrelay_cache" not in events[0]["message"]
        assert stream.cache == verdict
    assert len(ollama_server.requests) == 2  # the hits never reached the engine
    assert {r.worker for r in balancer.routed} == {balancer.workers[0].id}


async def test_the_cache_verdict_header_alone_reaches_the_result(
    balancers: StartBalancer, session: aiohttp.ClientSession
) -> None:
    """A worker that says its verdict only as ``x-ccrelay-cache`` (as HTTP mode's header)."""

    async def answer(worker_id: str, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {"x-ccrelay-cache": "hit"}
        if not body.get("stream"):
            return web.json_response(anthropic_message("cached"), headers=headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        events, _ = anthropic_text_events(["cac", "hed"])
        for event in events:
            await response.write(anthropic_sse(event).encode())
        await response.write_eof()
        return response

    balancer = await balancers(scripted_worker(answer))
    backend = make_backend(balancer, session)
    completion = await backend.complete(asking("q"), options("s"))
    assert completion.cache == "hit"
    stream = await backend.open_stream(asking("q"), options("s"))
    events = [event async for event in stream]
    assert check_stream(events).content[0].text == "cached"  # type: ignore[union-attr]
    assert stream.cache == "hit"
