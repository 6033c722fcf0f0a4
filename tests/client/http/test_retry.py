"""Retries against a real loopback OpenAI-compatible server, with an injected `sleep` and `rng`.

No test sleeps for a backoff: the recorded delays are asserted instead.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.cerebras import CerebrasBackend, CerebrasSettings
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    BackendConnectError,
    CcrelayError,
    UpstreamAuthError,
    UpstreamInvalidRequest,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
)
from ccrelay.http.retry import RetryPolicy, is_retryable, parse_retry_after
from ccrelay.latency.observer import Attempt
from ccrelay_config.models import RetrySettings
from tests.client.conftest import REQUEST, Sleeps
from tests.fakes.providers import FakeOpenAI, Reply

KEY = "sk-test-SECRET-123456"


class Attempts:
    def __init__(self) -> None:
        self.seen: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.seen.append(attempt)


def backend(
    session: aiohttp.ClientSession,
    base_url: str,
    sleeps: Sleeps,
    *,
    rng: Callable[[], float] = lambda: 0.5,
    observer: Attempts | None = None,
    **retry: Any,
) -> CerebrasBackend:
    settings = CerebrasSettings.model_validate(
        {
            "type": "cerebras",
            "model": "gpt-oss-120b",
            "base_url": base_url,
            "api_key": KEY,
            "retry": {"max_attempts": 3, "initial_backoff_s": 1.0, "max_backoff_s": 8.0, **retry},
            "timeouts": {"connect_s": 1, "first_byte_s": 2, "idle_s": 2, "total_s": 5},
        }
    )
    return CerebrasBackend("cerebras", settings, session, sleep=sleeps, rng=rng, observer=observer)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def openai_error(status: int, message: str, code: str | None = None) -> Reply:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return Reply(
        status=status,
        body={"error": {"message": message, "type": kind, "param": None, "code": code}},
    )


# -- the policy on its own ----------------------------------------------------------------------


def test_full_jitter_bounds_follow_the_exponential_ceiling() -> None:
    settings = RetrySettings(max_attempts=10, initial_backoff_s=0.5, max_backoff_s=3.0)
    top = RetryPolicy(settings, rng=lambda: 0.999999)
    bottom = RetryPolicy(settings, rng=lambda: 0.0)
    error = UpstreamServerError("b", "HTTP 500", upstream_status=500)
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        high = top.delay_for(attempt, error)
        assert high is not None
        assert ceiling * 0.999 <= high < ceiling
        assert bottom.delay_for(attempt, error) == 0.0


def test_jitter_uses_the_injected_random_source() -> None:
    draws = iter([0.25, 0.75])
    policy = RetryPolicy(RetrySettings(initial_backoff_s=2.0), rng=lambda: next(draws))
    error = UpstreamOverloaded("b", "HTTP 503", upstream_status=503)
    assert policy.delay_for(1, error) == 0.5
    assert policy.delay_for(2, error) == 3.0


def test_no_delay_after_the_last_attempt_or_for_a_final_error() -> None:
    policy = RetryPolicy(RetrySettings(max_attempts=2))
    assert policy.delay_for(2, UpstreamServerError("b", "x", upstream_status=500)) is None
    assert policy.delay_for(1, UpstreamInvalidRequest("b", "x", upstream_status=400)) is None
    assert policy.delay_for(1, UpstreamAuthError("b", "x", upstream_status=401)) is None
    assert policy.delay_for(1, ValueError("not ours")) is None


def test_retry_after_wins_and_a_long_one_fails_at_once() -> None:
    policy = RetryPolicy(RetrySettings(max_retry_after_s=30), rng=lambda: 0.0)
    assert (
        policy.delay_for(1, UpstreamRateLimited("b", "x", upstream_status=429, retry_after=7)) == 7
    )
    too_long = UpstreamRateLimited("b", "x", upstream_status=429, retry_after=31)
    assert policy.delay_for(1, too_long) is None


def test_retryable_is_decided_by_type() -> None:
    assert is_retryable(BackendConnectError("b", "refused"))
    assert is_retryable(UpstreamRateLimited("b", "x", upstream_status=429))
    assert not is_retryable(CcrelayError("retry me please"))
    assert not is_retryable(TimeoutError())


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("12", 12.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    parsed = parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None
    assert 27 <= parsed <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


# -- against the fake server --------------------------------------------------------------------


async def test_429_retry_after_is_honoured(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(
        Reply(
            status=429,
            headers={"Retry-After": "7"},
            body={"error": {"message": "Too many requests", "type": "rate_limit_exceeded"}},
        )
    )
    completion = await backend(session, fake_openai.base_url, sleeps).complete(
        REQUEST, RequestOptions()
    )
    assert sleeps.delays == [7.0]
    assert completion.attempts == 2
    assert len(fake_openai.requests) == 2


async def test_429_with_a_too_long_retry_after_fails_at_once(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(status=429, headers={"Retry-After": "3600"}, body={"error": "slow"}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await backend(session, fake_openai.base_url, sleeps).complete(REQUEST, RequestOptions())
    assert caught.value.retry_after == 3600
    assert caught.value.status == 429
    assert sleeps.delays == []
    assert len(fake_openai.requests) == 1


async def test_5xx_then_success(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    sleeps, attempts = Sleeps(), Attempts()
    fake_openai.push(openai_error(500, "boom"), openai_error(503, "busy"))
    client = backend(session, fake_openai.base_url, sleeps, rng=lambda: 1.0, observer=attempts)
    completion = await client.complete(REQUEST, RequestOptions(request_id="req_1"))
    assert completion.response["content"][0]["text"] == "Hello from fake"
    assert completion.attempts == 3
    assert sleeps.delays == [1.0, 2.0]
    assert [a.outcome for a in attempts.seen] == [
        "server_error",
        "overloaded",
        "ok",
    ]
    assert [a.status for a in attempts.seen] == [500, 503, 200]
    assert all(a.request_id == "req_1" and a.backend == "cerebras" for a in attempts.seen)


async def test_5xx_then_success_when_streaming(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(openai_error(502, "bad gateway"))
    stream = await backend(session, fake_openai.base_url, sleeps).open_stream(
        REQUEST, RequestOptions()
    )
    events = [event async for event in stream]
    assert events[-1] == {"type": "message_stop"}
    assert stream.attempts == 2
    assert len(sleeps.delays) == 1


async def test_connection_refused_is_retried_then_fails(session: aiohttp.ClientSession) -> None:
    sleeps = Sleeps()
    client = backend(session, f"http://127.0.0.1:{closed_port()}/v1", sleeps, max_attempts=4)
    with pytest.raises(BackendConnectError) as caught:
        await client.complete(REQUEST, RequestOptions())
    assert len(sleeps.delays) == 3
    assert "cerebras" in str(caught.value)
    assert "cannot connect to 127.0.0.1" in str(caught.value)
    with pytest.raises(BackendConnectError):
        await client.open_stream(REQUEST, RequestOptions())
    assert len(sleeps.delays) == 6


async def test_400_is_never_retried(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(
        Reply(
            status=400,
            body={
                "error": {
                    "message": "max_tokens is too large",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": None,
                }
            },
        )
    )
    with pytest.raises(UpstreamInvalidRequest) as caught:
        await backend(session, fake_openai.base_url, sleeps).complete(REQUEST, RequestOptions())
    assert "max_tokens is too large" in str(caught.value)
    assert caught.value.status == 400
    assert sleeps.delays == []
    assert len(fake_openai.requests) == 1


async def test_401_is_never_retried(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(status=401, body={"error": {"message": "bad key"}}))
    with pytest.raises(UpstreamAuthError) as caught:
        await backend(session, fake_openai.base_url, sleeps).open_stream(REQUEST, RequestOptions())
    assert "check the backend's api_key" in str(caught.value)
    assert sleeps.delays == []
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
async def test_max_attempts_is_respected(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession, max_attempts: int
) -> None:
    sleeps = Sleeps()
    fake_openai.push(*[openai_error(503, "overloaded") for _ in range(10)])
    client = backend(session, fake_openai.base_url, sleeps, max_attempts=max_attempts)
    with pytest.raises(UpstreamOverloaded):
        await client.complete(REQUEST, RequestOptions())
    assert len(fake_openai.requests) == max_attempts
    assert len(sleeps.delays) == max_attempts - 1


async def test_backoff_delays_are_full_jitter_of_the_ceiling(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    draws = iter([0.1, 0.5, 0.9, 0.3])
    fake_openai.push(*[openai_error(500, "boom") for _ in range(5)])
    client = backend(
        session,
        fake_openai.base_url,
        sleeps,
        rng=lambda: next(draws),
        max_attempts=5,
        initial_backoff_s=1.0,
        max_backoff_s=3.0,
    )
    with pytest.raises(UpstreamServerError):
        await client.complete(REQUEST, RequestOptions())
    # ceilings 1, 2, 3 (capped), 3; each delay is rng * ceiling.
    assert sleeps.delays == pytest.approx([0.1, 1.0, 2.7, 0.9])
