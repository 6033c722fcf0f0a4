"""The wire: timeouts, status mapping, garbage replies and broken streams, against real servers.

Timeouts are tiny (0.1-0.2 s) and the fake stalls a little longer, so each case costs well
under a second of wall time; backoff sleeps are injected and recorded, never slept.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.anthropic import AnthropicBackend, AnthropicSettings
from ccrelay.backends.cerebras import CerebrasBackend, CerebrasSettings
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    BackendTimeout,
    FirstByteTimeout,
    ProtocolError,
    StreamInterrupted,
    StreamStalled,
    TotalTimeout,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamInvalidRequest,
    UpstreamOverloaded,
    UpstreamPromptTooLong,
    UpstreamRateLimited,
    UpstreamRequestTooLarge,
    UpstreamServerError,
)
from ccrelay.http.statuses import error_for_payload, error_for_status, provider_message
from tests.client.conftest import REQUEST, Sleeps
from tests.fakes.providers import (
    FakeAnthropic,
    FakeOpenAI,
    Reply,
    anthropic_text_events,
    openai_text_chunks,
    sse,
)

KEY = "sk-test-SECRET-123456"
TINY = {"connect_s": 0.5, "first_byte_s": 0.2, "idle_s": 0.2, "total_s": 5}


def cerebras(
    session: aiohttp.ClientSession, fake: FakeOpenAI, sleeps: Sleeps, **fields: Any
) -> CerebrasBackend:
    settings = CerebrasSettings.model_validate(
        {
            "type": "cerebras",
            "model": "gpt-oss-120b",
            "base_url": fake.base_url,
            "api_key": KEY,
            "timeouts": TINY,
            "retry": {"max_attempts": 2},
            **fields,
        }
    )
    return CerebrasBackend("cerebras", settings, session, sleep=sleeps, rng=lambda: 0.0)


def anthropic(
    session: aiohttp.ClientSession, fake: FakeAnthropic, sleeps: Sleeps, **fields: Any
) -> AnthropicBackend:
    settings = AnthropicSettings.model_validate(
        {
            "type": "anthropic",
            "base_url": fake.url,
            "api_key": KEY,
            "timeouts": TINY,
            "retry": {"max_attempts": 2},
            **fields,
        }
    )
    return AnthropicBackend("claude", settings, session, sleep=sleeps, rng=lambda: 0.0)


# -- stalls -------------------------------------------------------------------------------------


async def test_stall_before_headers_is_a_first_byte_timeout_and_retried(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(delay_before=0.6), Reply(delay_before=0.6))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FirstByteTimeout) as caught:
        await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    assert loop.time() - started < 1.0
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.status == 504
    assert "cerebras" in str(caught.value)
    assert len(fake_openai.requests) == 2
    assert len(sleeps.delays) == 1


async def test_stall_before_headers_non_streamed(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(delay_before=0.6))
    completion = await cerebras(session, fake_openai, sleeps).complete(REQUEST, RequestOptions())
    assert completion.attempts == 2
    assert len(sleeps.delays) == 1


async def test_stall_after_headers_before_the_first_event(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(chunks=[], stall_after_chunks=0.6))
    stream = await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    events = [event async for event in stream]
    assert events[-1]["type"] == "message_stop"
    assert stream.attempts == 2
    assert len(sleeps.delays) == 1


async def test_stall_mid_stream_is_not_retried_once_an_event_was_passed_on(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    chunks = sse(openai_text_chunks(["Hel", "lo"])[:2])
    fake_openai.push(Reply(chunks=chunks, stall_after_chunks=0.6))
    stream = await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        async for event in stream:
            received.append(event)
    assert received[0]["type"] == "message_start"
    assert isinstance(caught.value.__cause__, StreamStalled)
    assert "stalled" in str(caught.value)
    assert not caught.value.retryable
    assert len(fake_openai.requests) == 1
    assert sleeps.delays == []


async def test_anthropic_stall_mid_stream(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    events, names = anthropic_text_events(["a", "b"])
    fake_anthropic.push(
        Reply(chunks=sse(events[:3], event_names=names[:3]), stall_after_chunks=0.6)
    )
    stream = await anthropic(session, fake_anthropic, sleeps).open_stream(REQUEST, RequestOptions())
    with pytest.raises(StreamInterrupted) as caught:
        async for _ in stream:
            pass
    assert isinstance(caught.value.__cause__, StreamStalled)
    assert len(fake_anthropic.requests) == 1


async def test_total_timeout_for_a_slow_non_streamed_body(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    # Headers come at once, the body never completes: total_s bounds it.
    sleeps = Sleeps()
    timeouts = {**TINY, "first_byte_s": 1, "idle_s": 1, "total_s": 0.3}
    fake_openai.push(
        Reply(chunks=[b'{"id": '], stall_after_chunks=0.8),
        Reply(chunks=[b'{"id": '], stall_after_chunks=0.8),
    )
    with pytest.raises(TotalTimeout) as caught:
        await cerebras(session, fake_openai, sleeps, timeouts=timeouts).complete(
            REQUEST, RequestOptions()
        )
    assert isinstance(caught.value, BackendTimeout)
    assert "0.3 s" in str(caught.value)


# -- garbage ------------------------------------------------------------------------------------


async def test_non_json_body_is_a_protocol_error_naming_the_backend(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(raw=b"<html>hello from a captive portal</html>"))
    with pytest.raises(ProtocolError) as caught:
        await cerebras(session, fake_openai, sleeps).complete(REQUEST, RequestOptions())
    assert str(caught.value).startswith("cerebras: ")
    assert "not JSON" in str(caught.value)
    assert sleeps.delays == []


async def test_non_json_error_body_keeps_its_status(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(
        Reply(status=502, raw=b"<html>Bad Gateway</html>"),
        Reply(status=502, raw=b""),
    )
    with pytest.raises(UpstreamServerError) as caught:
        await cerebras(session, fake_openai, sleeps).complete(REQUEST, RequestOptions())
    assert "HTTP 502: (empty body)" in str(caught.value)
    assert caught.value.upstream_status == 502


async def test_non_json_stream_chunk(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(chunks=[b"data: {not json\n\n"]))
    with pytest.raises(ProtocolError) as caught:
        await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    assert "cerebras" in str(caught.value)
    assert "not JSON" in str(caught.value)
    assert len(fake_openai.requests) == 1


async def test_truncated_openai_stream_is_a_clear_error(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    # Text arrives, then the server closes cleanly without a finish_reason or [DONE].
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["Hel", "lo"])[:3])))
    stream = await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    with pytest.raises(StreamInterrupted) as caught:
        async for _ in stream:
            pass
    assert "truncated" in str(caught.value)
    assert len(fake_openai.requests) == 1


async def test_openai_stream_cut_mid_event(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    chunks = [*sse(openai_text_chunks(["Hel", "lo"])[:2]), b'data: {"id": "chatcmpl-fake1", "cho']
    fake_openai.push(Reply(chunks=chunks, abort=True))
    stream = await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    with pytest.raises(StreamInterrupted) as caught:
        async for _ in stream:
            pass
    assert "cerebras" in str(caught.value)
    assert "cut off" in str(caught.value) or "truncated" in str(caught.value)


async def test_anthropic_truncated_stream(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    events, names = anthropic_text_events(["a", "b"])
    fake_anthropic.push(Reply(chunks=sse(events[:-1], event_names=names[:-1])))
    stream = await anthropic(session, fake_anthropic, sleeps).open_stream(REQUEST, RequestOptions())
    seen = []
    with pytest.raises(StreamInterrupted) as caught:
        async for event in stream:
            seen.append(event["type"])
    assert "message_stop" in str(caught.value)
    assert seen[-1] == "message_delta"


async def test_empty_stream_is_retried(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(Reply(chunks=[b"data: [DONE]\n\n"]))
    stream = await cerebras(session, fake_openai, sleeps).open_stream(REQUEST, RequestOptions())
    assert [e async for e in stream][-1]["type"] == "message_stop"
    assert stream.attempts == 2


# -- unknown model ------------------------------------------------------------------------------


async def test_openai_404_model_not_found(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(
        Reply(
            status=404,
            body={
                "error": {
                    "message": "The model `qwen-9` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        )
    )
    client = cerebras(session, fake_openai, sleeps, model="qwen-9")
    with pytest.raises(UnknownModelError) as caught:
        await client.complete(REQUEST, RequestOptions())
    message = str(caught.value)
    assert "model asked for: 'qwen-9'" in message
    assert "ccrelay models --backend cerebras" in message
    assert caught.value.status == 404
    assert sleeps.delays == []


async def test_cerebras_style_top_level_error_body(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    # Cerebras answers with the error fields at the top level of the body.
    sleeps = Sleeps()
    fake_openai.push(
        Reply(
            status=404,
            body={
                "message": "Model qwen-9 does not exist or you do not have access to it.",
                "type": "not_found_error",
                "param": "model",
                "code": "model_not_found",
            },
        )
    )
    with pytest.raises(UnknownModelError) as caught:
        await cerebras(session, fake_openai, sleeps, model="qwen-9").open_stream(
            REQUEST, RequestOptions()
        )
    assert "Model qwen-9 does not exist" in str(caught.value)
    assert "ccrelay models --backend cerebras" in str(caught.value)


async def test_400_about_the_model_is_an_unknown_model(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_openai.push(
        Reply(
            status=400,
            body={
                "error": {
                    "message": "invalid model ID",
                    "type": "invalid_request_error",
                    "param": "model",
                }
            },
        )
    )
    with pytest.raises(UnknownModelError) as caught:
        await cerebras(session, fake_openai, sleeps, model="gpt-9").complete(
            REQUEST, RequestOptions()
        )
    assert "'gpt-9'" in str(caught.value)


async def test_anthropic_404_not_found(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    fake_anthropic.push(
        Reply(
            status=404,
            body={
                "type": "error",
                "error": {"type": "not_found_error", "message": "model: claude-9"},
            },
        )
    )
    request = {**REQUEST, "model": "claude-9"}
    with pytest.raises(UnknownModelError) as caught:
        await anthropic(session, fake_anthropic, sleeps).open_stream(request, RequestOptions())
    assert "model asked for: 'claude-9'" in str(caught.value)
    assert "ccrelay models --backend claude" in str(caught.value)


# -- status mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, UpstreamInvalidRequest),
        (401, UpstreamAuthError),
        (403, UpstreamAuthError),
        (404, UnknownModelError),
        (408, UpstreamServerError),
        (413, UpstreamRequestTooLarge),
        (422, UpstreamInvalidRequest),
        (429, UpstreamRateLimited),
        (500, UpstreamServerError),
        (502, UpstreamServerError),
        (503, UpstreamOverloaded),
        (529, UpstreamOverloaded),
    ],
)
def test_status_mapping(status: int, kind: type[Exception]) -> None:
    error = error_for_status("b", status, json.dumps({"error": {"message": "m"}}))
    assert type(error) is kind
    assert error.upstream_status == status
    assert "HTTP" in str(error)


def test_provider_message_shapes() -> None:
    anthropic_body = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert provider_message(json.dumps(anthropic_body)) == ("Overloaded", "overloaded_error", None)
    openai_body = {"error": {"message": "m", "type": "t", "param": "model", "code": "c"}}
    assert provider_message(json.dumps(openai_body)) == ("m", "c", "model")
    assert provider_message(json.dumps({"error": "plain"})) == ("plain", None, None)
    assert provider_message(json.dumps({"detail": "runpod says"}))[0] == "runpod says"
    assert provider_message("x" * 2000)[0] == "x" * 500
    assert provider_message("")[0] == "(empty body)"


def test_error_payload_inside_a_stream() -> None:
    overloaded = error_for_payload("b", {"type": "overloaded_error", "message": "Overloaded"})
    assert isinstance(overloaded, UpstreamOverloaded)
    limited = error_for_payload("b", {"message": "slow down", "code": 429})
    assert isinstance(limited, UpstreamRateLimited)
    scrubbed = error_for_payload(
        "b", {"message": f"bad key {KEY}"}, scrub=lambda t: t.replace(KEY, "***")
    )
    assert KEY not in str(scrubbed)
    assert "an error event in its stream" in limited.message  # not an HTTP status it never sent


def test_a_prompt_too_long_is_relayed_in_the_words_claude_code_compacts_on() -> None:
    """Claude Code 2.1.332 matches the whole message; the backend's name before it would stop
    its compaction (Anthropic's own 400, and the worker's, in a body or in a stream)."""
    words = "prompt is too long: 210511 tokens > 200000 maximum"
    anthropic_body = {"type": "error", "error": {"type": "invalid_request_error", "message": words}}
    for error in (
        error_for_status("claude", 400, json.dumps(anthropic_body)),
        error_for_payload("gpu", {"type": "invalid_request_error", "message": words}),
    ):
        assert isinstance(error, UpstreamPromptTooLong)
        assert (error.message, error.status, error.outcome) == (words, 400, "prompt_too_long")
    other = error_for_status("claude", 400, json.dumps({"error": {"message": "bad tool"}}))
    assert not isinstance(other, UpstreamPromptTooLong)
    assert other.message.startswith("claude: HTTP 400: ")
