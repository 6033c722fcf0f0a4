"""Failover and circuit breaking across real loopback servers (issue 6's proof).

The primary is a Cerebras-type backend on one fake OpenAI server, the secondary a generic
OpenAI-compatible backend on another. Backoff sleeps are injected; the breaker's clock too.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.factory import BackendFactory, load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    AllBackendsFailed,
    BackendConnectError,
    CircuitOpenError,
    Fault,
    StreamInterrupted,
    UnknownBackendError,
    UpstreamInvalidRequest,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from ccrelay.routing.chain import Router
from ccrelay_config.models import CcrelayConfig
from tests.client.conftest import REQUEST, Clock, Sleeps
from tests.fakes.providers import FakeOpenAI, Reply, openai_text_chunks, sse


def config_for(
    primary_url: str, secondary_url: str, *, threshold: int = 2, cooldown: float = 30
) -> CcrelayConfig:
    common = {
        "retry": {"max_attempts": 2, "initial_backoff_s": 0.1},
        "circuit": {"failure_threshold": threshold, "cooldown_s": cooldown},
        "timeouts": {"connect_s": 1, "first_byte_s": 1, "idle_s": 0.2, "total_s": 5},
    }
    document = {
        "active": "primary",
        "fallback": ["secondary"],
        "backends": {
            "primary": {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": primary_url,
                "api_key": "k1",
                **common,
            },
            "secondary": {"type": "openai", "base_url": secondary_url, "model": "m2", **common},
        },
    }
    return load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
    )


class Setup:
    def __init__(self, router: Router, sleeps: Sleeps, clock: Clock) -> None:
        self.router = router
        self.sleeps = sleeps
        self.clock = clock


def build(
    session: aiohttp.ClientSession, primary: FakeOpenAI, secondary: FakeOpenAI, **kwargs: Any
) -> Setup:
    sleeps, clock = Sleeps(), Clock()
    config = config_for(primary.base_url, secondary.base_url, **kwargs)
    factory = BackendFactory(config, session, sleep=sleeps, rng=lambda: 0.5)
    return Setup(Router(factory, clock=clock), sleeps, clock)


def busy() -> Reply:
    return Reply(status=503, body={"error": {"message": "Service Unavailable"}})


async def test_primary_503_then_refusing_connections_secondary_serves(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=5)
    fake_openai.push(busy(), busy())
    completion = await s.router.complete(REQUEST, RequestOptions())
    assert completion.backend == "secondary"
    assert completion.failovers == 1
    assert len(fake_openai.requests) == 2
    assert secondary.requests[-1].body["model"] == "m2"

    await fake_openai.close()  # the primary now refuses connections
    completion = await s.router.complete(REQUEST, RequestOptions())
    assert completion.backend == "secondary"
    assert len(secondary.requests) == 2
    assert s.router.states() == {"primary": "closed", "secondary": "closed"}
    assert s.router.breakers["primary"].failures == 2


async def test_streams_fail_over_before_the_first_event(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary)
    fake_openai.push(busy(), busy())
    served = await s.router.open_stream(REQUEST, RequestOptions())
    stream = served.result
    events = [event async for event in stream]
    assert served.backend == "secondary"
    assert served.failovers == 1
    assert events[-1] == {"type": "message_stop"}


async def test_breaker_opens_and_the_primary_is_not_touched(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=2)
    fake_openai.push(*[busy() for _ in range(4)])
    for _ in range(2):
        assert (await s.router.complete(REQUEST, RequestOptions())).backend == "secondary"
    assert s.router.states()["primary"] == "open"
    assert len(fake_openai.requests) == 4

    for _ in range(3):
        completion = await s.router.complete(REQUEST, RequestOptions())
        assert completion.backend == "secondary"
        assert completion.failovers == 1  # the skipped primary counts as one failover
    assert len(fake_openai.requests) == 4  # not one request reached the open primary
    served = await s.router.open_stream(REQUEST, RequestOptions())
    stream = served.result
    assert served.backend == "secondary"
    await stream.aclose()
    assert len(fake_openai.requests) == 4


async def test_half_open_probe_closes_the_breaker_when_the_primary_returns(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=1, cooldown=30)
    fake_openai.push(busy(), busy())
    await s.router.complete(REQUEST, RequestOptions())
    assert s.router.states()["primary"] == "open"

    s.clock.now += 29
    assert (await s.router.complete(REQUEST, RequestOptions())).backend == "secondary"
    assert len(fake_openai.requests) == 2

    s.clock.now += 1  # cooldown over: the next request probes the primary, which is back
    completion = await s.router.complete(REQUEST, RequestOptions())
    assert completion.backend == "primary"
    assert completion.failovers == 0
    assert len(fake_openai.requests) == 3
    assert s.router.states()["primary"] == "closed"


async def test_failed_probe_opens_the_breaker_again(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=1, cooldown=10)
    fake_openai.push(*[busy() for _ in range(4)])
    await s.router.complete(REQUEST, RequestOptions())
    s.clock.now += 10
    assert (await s.router.complete(REQUEST, RequestOptions())).backend == "secondary"
    assert len(fake_openai.requests) == 4  # the probe made its attempts and failed
    assert s.router.states()["primary"] == "open"
    s.clock.now += 5
    await s.router.complete(REQUEST, RequestOptions())
    assert len(fake_openai.requests) == 4


async def test_no_failover_after_the_first_event(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary)
    chunks = sse(openai_text_chunks(["Hel", "lo"])[:2])
    fake_openai.push(Reply(chunks=chunks, abort=True))
    served = await s.router.open_stream(REQUEST, RequestOptions())
    stream = served.result
    assert served.backend == "primary"
    received = []
    with pytest.raises(StreamInterrupted):
        async for event in stream:
            received.append(event)
    assert received[0]["type"] == "message_start"
    assert secondary.requests == []
    assert len(fake_openai.requests) == 1
    assert s.sleeps.delays == []


async def test_400_from_the_primary_is_returned_not_failed_over(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=1)
    fake_openai.push(
        Reply(status=400, body={"error": {"message": "messages: bad role", "param": "messages"}})
    )
    with pytest.raises(UpstreamInvalidRequest) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    assert caught.value.status == 400
    assert "bad role" in str(caught.value)
    assert secondary.requests == []
    assert s.router.states()["primary"] == "closed"
    assert s.router.breakers["primary"].failures == 0


async def test_all_backends_failed_carries_the_last_status(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=5)
    fake_openai.push(busy(), busy())
    secondary.push(
        Reply(
            status=429,
            headers={"Retry-After": "120"},
            body={"error": {"message": "Too many requests"}},
        )
    )
    with pytest.raises(AllBackendsFailed) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    error = caught.value
    assert error.status == 429
    assert error.error_type == "rate_limit_error"
    assert error.retry_after == 120
    assert [type(e) for e in error.errors] == [UpstreamOverloaded, UpstreamRateLimited]
    assert "tried primary, secondary" in str(error)
    assert "Too many requests" in str(error)


async def test_every_circuit_open_is_a_503(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=1)
    fake_openai.push(busy(), busy())
    secondary.push(busy(), busy())
    with pytest.raises(AllBackendsFailed):
        await s.router.complete(REQUEST, RequestOptions())
    assert s.router.states() == {"primary": "open", "secondary": "open"}
    with pytest.raises(AllBackendsFailed) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    assert all(isinstance(e, CircuitOpenError) for e in caught.value.errors)
    assert caught.value.status == 503
    assert "circuit open; next probe in 30 s" in str(caught.value)
    assert len(fake_openai.requests) == 2
    assert len(secondary.requests) == 2


async def test_a_chain_of_one_raises_the_backend_error_itself(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary)
    # Naming a backend puts it first, followed by the configured fallbacks other than itself:
    # for `secondary` that is nothing, so its own error comes back unwrapped.
    assert s.router.chain("secondary") == ["secondary"]
    assert s.router.chain() == ["primary", "secondary"]
    await secondary.close()
    with pytest.raises(BackendConnectError) as caught:
        await s.router.complete(REQUEST, RequestOptions(), backend="secondary")
    assert caught.value.backend == "secondary"
    assert fake_openai.requests == []


async def test_unknown_backend_name_lists_the_known_ones(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary)
    with pytest.raises(UnknownBackendError) as caught:
        await s.router.complete(REQUEST, RequestOptions(), backend="tertiary")
    assert "known backends: primary, secondary" in str(caught.value)
    assert caught.value.status == 400


# -- issue 13: whose fault, and streams judged when they end -----------------------------------


def broken_after_first_event() -> Reply:
    """A stream that sends its first chunk, then drops the connection."""
    return Reply(chunks=sse(openai_text_chunks(["partial"]))[:1], abort=True)


async def test_a_backend_whose_streams_break_after_the_first_event_opens_its_circuit(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=2)
    for _ in range(2):
        fake_openai.push(broken_after_first_event())
        served = await s.router.open_stream(REQUEST, RequestOptions())
        stream = served.result
        assert served.backend == "primary"
        with pytest.raises(StreamInterrupted):
            async for _event in stream:
                pass
        await stream.aclose()
    assert s.router.states()["primary"] == "open"
    served = await s.router.open_stream(REQUEST, RequestOptions())
    stream = served.result
    assert served.backend == "secondary"  # the fallback is used at last
    await stream.aclose()


async def test_a_stream_the_caller_abandons_says_nothing_about_the_backend(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=1, cooldown=10)
    fake_openai.push(busy(), busy())  # two attempts fail: open
    await s.router.complete(REQUEST, RequestOptions())
    assert s.router.states()["primary"] == "open"
    s.clock.now += 10
    probe_served = await s.router.open_stream(REQUEST, RequestOptions())  # the half-open probe
    probe = probe_served.result
    assert probe_served.backend == "primary"
    await probe.aclose()  # abandoned after its first event: the probe slot is free again
    assert s.router.states()["primary"] == "half_open"
    again_served = await s.router.open_stream(REQUEST, RequestOptions())
    again = again_served.result
    assert again_served.backend == "primary"
    async for _event in again:
        pass
    assert s.router.states()["primary"] == "closed"


async def test_requests_for_a_model_the_backend_lacks_never_open_its_circuit(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    from ccrelay.errors import UnknownModelError

    s = build(session, fake_openai, secondary, threshold=2)
    missing = Reply(
        status=404, body={"error": {"message": "no such model", "code": "model_not_found"}}
    )
    for _ in range(6):
        fake_openai.push(missing)
        with pytest.raises(UnknownModelError):
            await s.router.complete(REQUEST, RequestOptions())
    assert s.router.states()["primary"] == "closed"
    assert secondary.requests == []  # a caller fault is not failed over either
    completion = await s.router.complete(REQUEST, RequestOptions())
    assert completion.backend == "primary"


async def test_a_caller_fault_after_a_failover_carries_every_attempt(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary, threshold=5)
    fake_openai.push(busy(), busy())
    secondary.push(Reply(status=400, body={"error": {"message": "bad request"}}))
    with pytest.raises(UpstreamInvalidRequest) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    assert caught.value.attempts == 3


# -- issue 24: when every backend fails, the message leads with the first one and its fix ------

CEREBRAS_WRONG_KEY = Reply(
    status=401,
    # what api.cerebras.ai answers a wrong key (as reported by several clients, 2026-08)
    body={
        "message": "Wrong API Key",
        "type": "invalid_request_error",
        "param": "api_key",
        "code": "wrong_api_key",
    },
)


async def test_a_refused_key_leads_the_message_and_decides_the_status(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    """It used to read `all backends failed (tried ...); last: secondary: ...`, a 5xx that
    Claude Code calls "a server-side issue, usually temporary"."""
    s = build(session, fake_openai, secondary)
    fake_openai.push(CEREBRAS_WRONG_KEY)
    await secondary.close()  # the fallback is down
    with pytest.raises(AllBackendsFailed) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    error = caught.value
    message = error.message
    assert message.startswith("primary refused the key (auth_failed): check the backend's api_key")
    assert "; then secondary: cannot connect to 127.0.0.1" in message
    assert message.endswith("(tried primary, secondary)")
    assert (error.status, error.error_type) == (401, "authentication_error")
    assert error.fault is Fault.CONFIG  # `ccrelay ask` exits 2, as README says for a refused key
    assert error.backend == "secondary"  # the last one tried, as the records say


async def test_without_a_refused_key_the_last_failure_decides(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    s = build(session, fake_openai, secondary)
    await fake_openai.close()
    secondary.push(busy(), busy())
    with pytest.raises(AllBackendsFailed) as caught:
        await s.router.complete(REQUEST, RequestOptions())
    error = caught.value
    assert error.message.startswith("primary: cannot connect to 127.0.0.1")
    assert "; then secondary: HTTP 503: Service Unavailable" in error.message
    assert (error.status, error.fault) == (529, Fault.BACKEND)
