"""Issue 22 through a real gateway: a scale-to-zero RunPod endpoint behind the cold-start
policies (ccrelay.coldstart.driver), with a hosted fallback.

The endpoint is the fake load balancer (tests/fakes/runpod_balancer/) in front of this
repository's worker in HTTP mode (a real redis-server and the fake Ollama behind it); its
worker counts come from the fake REST API (tests/fakes/runpod_rest.py) reading the balancer's
live workers. The fallback is a fake OpenAI-compatible server. Times are scaled down (a cold
start of 1 s, an idle timeout of 2 s); the decisions are the ones a real endpoint gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bench._sessions_assumptions import Assumptions, load
from bench._sessions_replay import PolicySetup, replay
from bench._sessions_trace import DeveloperDay, Request, Session, Turn
from ccrelay.cli.statusline import worker_note
from ccrelay.coldstart import ColdStartSettings
from tests.bench.conftest import write_model
from tests.client.gateway.conftest import Gateway, config_env, openai_backend, running_gateway
from tests.conftest import eventually
from tests.fakes.providers import FakeOpenAI
from tests.fakes.runpod_balancer import FakeLoadBalancer, http_mode_worker
from tests.fakes.runpod_rest import FakeRunPod

SESSION = {"X-Claude-Code-Session-Id": "3f0c2a51-session"}
TOKEN = "ccrelay-gateway-token-for-cold-starts"


def ask(text: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }


def gpu_backend(balancer: FakeLoadBalancer, rest: FakeRunPod, **cold_start: Any) -> dict[str, Any]:
    return {
        "type": "runpod",
        "endpoint_type": "load_balancer",
        "endpoint_url": balancer.url,
        "endpoint_id": balancer.endpoint_id,
        "rest_url": rest.api_url,
        "api_key": balancer.api_key,
        "retry": {"max_attempts": 1, "initial_backoff_s": 0},
        "cold_start": {"idle_timeout_s": 2, "margin_s": 0.7, **cold_start},
    }


@asynccontextmanager
async def endpoint(
    make_settings: Any,
    rest: FakeRunPod,
    fallback: FakeOpenAI,
    *,
    workers: int = 0,
    **cold_start: Any,
) -> AsyncIterator[tuple[FakeLoadBalancer, Gateway]]:
    worker_app = http_mode_worker(lambda: make_settings(OLLAMA_CONTEXT_LENGTH="32768"))
    balancer = await FakeLoadBalancer(
        worker_app, max_workers=1, cold_start_s=1.0, idle_timeout_s=2.0
    ).start()
    rest.attach_balancer(balancer)
    try:
        if workers:
            await balancer.start_workers(workers)
        document = {
            "gpu": gpu_backend(balancer, rest, **cold_start),
            "hosted": openai_backend(fallback.base_url),
        }
        env = config_env(document, active="gpu", fallback=["gpu", "hosted"])
        async with running_gateway(env, auth_token=TOKEN) as gateway:
            yield balancer, gateway
    finally:
        await balancer.close()


async def health(gateway: Gateway) -> dict[str, Any]:
    async with gateway.client.get(
        gateway.url + "/health", headers={"x-ccrelay-token": TOKEN}
    ) as reply:
        body: dict[str, Any] = await reply.json()
        return body


async def send(gateway: Gateway, text: str) -> dict[str, str]:
    headers = {**SESSION, "x-ccrelay-token": TOKEN}
    async with await gateway.post("/v1/messages", ask(text), headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        return dict(reply.headers)


def messages(balancer: FakeLoadBalancer) -> list[Any]:
    return [r for r in balancer.routed if r.path == "/v1/messages" and r.status == 200]


async def test_a_cold_worker_is_hedged_started_prefilled_and_then_serves_the_session(
    make_settings: Any, runpod_rest_server: FakeRunPod, secondary: FakeOpenAI
) -> None:
    async with endpoint(make_settings, runpod_rest_server, secondary) as (balancer, gateway):
        assert (await health(gateway))["backends"]["gpu"]["worker"] == "cold"

        first = await send(gateway, "what does main.py do?")
        # no worker: the fallback answers at once, and one worker starts meanwhile
        assert first["x-ccrelay-backend"] == "hosted"
        assert first["x-ccrelay-hedged"] == "true"
        assert runpod_rest_server.calls, "the worker counts were read before planning"
        assert (await health(gateway))["backends"]["gpu"]["worker"] == "warming"

        # the warm worker gets the session's prompt with max_tokens 1, so its cache holds it
        await eventually(lambda: len(messages(balancer)) == 1, within=15)
        (prefill,) = messages(balancer)
        assert prefill.body["max_tokens"] == 1
        assert prefill.body["messages"] == ask("what does main.py do?")["messages"]
        assert (await health(gateway))["backends"]["gpu"]["worker"] == "warm"

        second = await send(gateway, "and utils.py?")
        assert second["x-ccrelay-backend"] == "gpu"
        assert "x-ccrelay-hedged" not in second
        assert len(balancer.workers) == 1  # one worker started, not one per request
        assert messages(balancer)[-1].worker == prefill.worker  # the prefilled one


async def test_keep_warm_holds_the_worker_through_a_pause_longer_than_its_idle_timeout(
    make_settings: Any, runpod_rest_server: FakeRunPod, secondary: FakeOpenAI
) -> None:
    async with endpoint(make_settings, runpod_rest_server, secondary, workers=1) as (
        balancer,
        gateway,
    ):
        assert (await send(gateway, "one"))["x-ccrelay-backend"] == "gpu"
        (worker,) = balancer.workers
        await asyncio.sleep(4.5)  # two idle timeouts of reading
        assert worker.state == "ready"
        pings = [r for r in balancer.routed if r.path == "/v1/models" and r.worker == worker.id]
        assert len(pings) >= 2
        again = await send(gateway, "two")
        assert again["x-ccrelay-backend"] == "gpu"
        assert messages(balancer)[-1].worker == worker.id
        assert len(balancer.workers) == 1  # no cold start


async def test_without_keep_warm_the_same_pause_lets_the_worker_stop(
    make_settings: Any, runpod_rest_server: FakeRunPod, secondary: FakeOpenAI
) -> None:
    """The counterfactual of the test above: the endpoint alone scales to zero."""
    off = {"keep_warm": {"enabled": False}}
    async with endpoint(make_settings, runpod_rest_server, secondary, workers=1, **off) as (
        balancer,
        gateway,
    ):
        assert (await send(gateway, "one"))["x-ccrelay-backend"] == "gpu"
        (worker,) = balancer.workers
        await eventually(lambda: worker.state == "stopped", within=6)
        third = await send(gateway, "two")
        assert third["x-ccrelay-backend"] == "hosted"  # hedged while a worker starts again
        assert third["x-ccrelay-hedged"] == "true"


async def test_the_status_line_says_whether_the_worker_is_cold(
    make_settings: Any,
    runpod_rest_server: FakeRunPod,
    secondary: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with endpoint(make_settings, runpod_rest_server, secondary) as (_balancer, gateway):
        env = {
            "CCRELAY_GATEWAY_URL": gateway.url,
            "ANTHROPIC_CUSTOM_HEADERS": f"x-other: 1\nx-ccrelay-token: {TOKEN}",
        }
        assert await asyncio.to_thread(worker_note, env) == "gpu worker cold"
        await send(gateway, "hello")
        assert await asyncio.to_thread(worker_note, env) == "gpu worker warming"
        wrong = {**env, "ANTHROPIC_CUSTOM_HEADERS": "x-ccrelay-token: not-it"}
        assert await asyncio.to_thread(worker_note, wrong) is None  # 401: no note, no error


# -- the gateway decides as the benchmark's replay does ---------------------------------------

TRACE = DeveloperDay(
    0,
    0,
    (
        Session(
            "3f0c2a51-session",
            0.0,
            (
                Turn(0.0, (Request(0, 20, 0.3), Request(100, 20, 0.3), Request(100, 20, 0.3))),
                Turn(3.5, (Request(100, 20, 0.3), Request(100, 20, 0.3))),
                Turn(0.6, (Request(100, 20, 0.3),)),
            ),
        ),
    ),
)
"""One session: a turn while the worker starts (1 s), a pause longer than the idle timeout
(2 s), two more turns."""


def compressed(tmp_path: Path) -> Assumptions:
    """The latency model in the fake endpoint's time: a 1 s cold start, a 2 s idle timeout,
    prompts and answers that take a few milliseconds."""
    return dataclasses.replace(
        load(write_model(tmp_path)),
        container_and_engine_s=0.5,
        model_load_s=0.5,
        idle_timeout_s=2.0,
        queue_pick_up_s=0.01,
        prompt_eval_tokens_per_s=1e6,
        generation_tokens_per_s=2000,
        fallback_ttft_s=0.01,
        first_prompt_tokens=400,
    )


def gateway_settings() -> ColdStartSettings:
    """What `gpu_backend` configures, as the gateway runs it."""
    settings = ColdStartSettings(idle_timeout_s=2, margin_s=0.7)
    return settings.as_gateway_runs(load_balanced=True)


def without_timers(decisions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The decisions that do not depend on when a timer fired to the millisecond."""
    return [d for d in decisions if d[0] not in ("ping", "counts")]


async def test_the_gateway_makes_the_decisions_the_benchmark_replays(
    make_settings: Any, runpod_rest_server: FakeRunPod, secondary: FakeOpenAI, tmp_path: Path
) -> None:
    """The same session, in compressed time, through the real gateway at the fake RunPod and
    through `python -m bench sessions`' replay: the same requests go to the same place, and the
    same background jobs start (keep-warm pings in the pause, in both)."""
    simulated = replay((TRACE,), compressed(tmp_path), PolicySetup(gateway_settings(), True), 1)

    async with endpoint(make_settings, runpod_rest_server, secondary) as (_balancer, gateway):
        (session,) = TRACE.sessions
        messages: list[dict[str, Any]] = []
        for t, turn in enumerate(session.turns):
            await asyncio.sleep(turn.think_s)
            for r, planned in enumerate(turn.requests):
                messages.append({"role": "user", "content": f"turn {t} request {r}"})
                body = {**ask(""), "messages": messages}
                headers = {**SESSION, "x-ccrelay-token": TOKEN}
                async with await gateway.post("/v1/messages", body, headers=headers) as reply:
                    assert reply.status == 200, await reply.text()
                    answer = await reply.json()
                messages.append({"role": "assistant", "content": answer["content"]})
                if r + 1 < len(turn.requests):
                    await asyncio.sleep(planned.tool_gap_s)
        driver = gateway.runtime.router.cold_starts["gpu"]
        assert driver is not None
        real = list(driver.decisions)

    assert without_timers(real) == without_timers(simulated.decisions)
    routed = [kind for kind, _ in without_timers(real) if kind in ("self", "fallback")]
    assert routed == ["fallback"] * 3 + ["self"] * 3  # hedged while it started, then kept warm
    assert ("ping", session.session_id) in real
    assert ("ping", session.session_id) in simulated.decisions
