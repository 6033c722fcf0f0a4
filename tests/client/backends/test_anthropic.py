"""The Anthropic pass-through backend against a loopback Messages API."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.anthropic import AnthropicBackend, AnthropicSettings, CallerCredentialRefused
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    Fault,
    ProtocolError,
    StreamInterrupted,
    UpstreamAuthError,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from ccrelay_config.credentials import trusts_user_credentials
from tests.client.conftest import Sleeps
from tests.fakes.providers import (
    FakeAnthropic,
    Reply,
    anthropic_message,
    anthropic_text_events,
    sse,
)

KEY = "sk-ant-test-SECRET-123456"

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
        },
        {"role": "user", "content": "go on"},
    ],
    "tools": [{"name": "Read", "description": "read", "input_schema": {"type": "object"}}],
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "metadata": {"user_id": "u1"},
    "temperature": 1,
}


def backend(
    session: aiohttp.ClientSession, fake: FakeAnthropic, sleeps: Sleeps | None = None, **fields: Any
) -> AnthropicBackend:
    settings = AnthropicSettings.model_validate(
        {"type": "anthropic", "base_url": fake.url, "retry": {"max_attempts": 2}, **fields}
    )
    return AnthropicBackend("anthropic", settings, session, sleep=sleeps or Sleeps())


KEY = "sk-ant-test-0123456789"
"""A configured key, for tests about something else than whose key is sent."""

CALLER = {
    "x-api-key": "caller-key",
    "anthropic-beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
    "anthropic-version": "2023-06-01",
    "x-stainless-os": "Linux",
    "cookie": "session=1",
    "host": "evil.example",
}


async def test_body_is_passed_through_untouched(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    original = copy.deepcopy(REQUEST)
    completion = await backend(session, fake_anthropic, api_key=KEY).complete(
        REQUEST, RequestOptions()
    )
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.body == REQUEST
    assert original == REQUEST
    assert completion.response == anthropic_message(model="claude-sonnet-4-5")
    assert completion.model == "claude-sonnet-4-5"


async def test_only_the_model_is_mapped(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    client = backend(
        session, fake_anthropic, api_key=KEY, models={"claude-*haiku*": "claude-3-5-haiku-latest"}
    )
    request = {**REQUEST, "model": "claude-haiku-4-5"}
    await client.complete(request, RequestOptions())
    sent = fake_anthropic.requests[-1].body
    assert sent == {**request, "model": "claude-3-5-haiku-latest"}
    assert request["model"] == "claude-haiku-4-5"


async def test_configured_key_wins_and_headers_are_filtered(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    await backend(session, fake_anthropic, api_key=KEY).complete(
        REQUEST, RequestOptions(forward_headers={**CALLER, "authorization": "Bearer caller"})
    )
    headers = fake_anthropic.requests[-1].headers
    assert headers["x-api-key"] == KEY
    assert "Authorization" not in headers
    assert headers["anthropic-beta"] == CALLER["anthropic-beta"]
    assert headers["anthropic-version"] == "2023-06-01"
    assert "x-stainless-os" not in headers
    assert "Cookie" not in headers
    assert headers["Host"] != "evil.example"


async def test_caller_key_is_forwarded_to_a_trusted_host_when_none_is_configured(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    client = backend(session, fake_anthropic, forward_credentials=True)
    await client.complete(REQUEST, RequestOptions(forward_headers=CALLER))
    assert fake_anthropic.requests[-1].headers["x-api-key"] == "caller-key"
    # Claude Code signed in with OAuth sends a bearer token instead.
    await client.complete(REQUEST, RequestOptions(forward_headers={"Authorization": "Bearer tok"}))
    headers = fake_anthropic.requests[-1].headers
    assert headers["Authorization"] == "Bearer tok"
    assert "x-api-key" not in headers


@pytest.mark.parametrize("trust", [None, False])
async def test_the_caller_s_credential_never_goes_to_a_host_the_config_does_not_trust(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession, trust: bool | None
) -> None:
    """Issue 25: a config naming any base_url used to receive Claude Code's own credential.
    Unset, only https://api.anthropic.com gets it; false: nowhere."""
    fake_anthropic.push(
        Reply(
            status=401,
            body={
                "type": "error",
                "error": {
                    "type": "authentication_error",
                    "message": "x-api-key header is required",
                },
            },
        )
    )
    client = backend(session, fake_anthropic, forward_credentials=trust)
    with pytest.raises(UpstreamAuthError) as refused:
        await client.complete(
            REQUEST,
            RequestOptions(forward_headers={**CALLER, "authorization": "Bearer sk-ant-oat01-x"}),
        )
    headers = {k.lower(): v for k, v in fake_anthropic.requests[-1].headers.items()}
    assert "x-api-key" not in headers and "authorization" not in headers
    assert headers["anthropic-beta"] == CALLER["anthropic-beta"]  # the rest still goes
    # the fix names what to do: our own key, or trust in so many words
    assert "forward_credentials: true" in refused.value.message
    assert refused.value.fault is Fault.CONFIG  # the config's to fix: failover may help


@pytest.mark.parametrize(
    ("base_url", "trust", "trusted"),
    [
        ("https://api.anthropic.com", None, True),
        ("https://API.anthropic.com/", None, True),
        (None, None, True),
        ("http://api.anthropic.com", None, False),  # never in clear text
        ("https://api.anthropic.com.evil.example", None, False),
        ("https://proxy.example/anthropic", None, False),
        ("https://proxy.example/anthropic", True, True),
        ("https://api.anthropic.com", False, False),
    ],
)
def test_where_the_user_s_credential_may_go(
    base_url: str | None, trust: bool | None, trusted: bool
) -> None:
    assert trusts_user_credentials(base_url, trust) is trusted


async def test_a_refused_caller_credential_is_the_caller_s(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    """Anthropic refusing Claude Code's own login is not this backend failing: a 401 as it
    came (Claude Code refreshes or asks to sign in), no failover, no breaker count."""
    refusal = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "OAuth token has expired"},
    }
    fake_anthropic.push(Reply(status=401, body=refusal), Reply(status=401, body=refusal))
    client = backend(session, fake_anthropic, forward_credentials=True)
    options = RequestOptions(forward_headers={"authorization": "Bearer sk-ant-oat01-old"})
    with pytest.raises(CallerCredentialRefused) as plain:
        await client.complete(REQUEST, options)
    with pytest.raises(CallerCredentialRefused) as streamed:
        await client.open_stream(REQUEST, options)
    for caught in (plain.value, streamed.value):
        assert caught.status == 401 and caught.fault is Fault.CALLER
        assert not caught.counts_against_backend
        assert "OAuth token has expired" in caught.message
        assert "sk-ant-oat01-old" not in caught.message
    assert len(fake_anthropic.requests) == 2  # never retried


async def test_stream_events_are_passed_through(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    events, names = anthropic_text_events(["Hel", "lo"], usage=(30, 4))
    fake_anthropic.push(Reply(chunks=sse(events, event_names=names)))
    stream = await backend(session, fake_anthropic, api_key=KEY).open_stream(
        REQUEST, RequestOptions(forward_headers=CALLER)
    )
    received = [event async for event in stream]
    assert received == events
    assert stream.completed
    assert stream.usage == {"input_tokens": 30, "output_tokens": 4}
    sent = fake_anthropic.requests[-1]
    assert sent.body == {**REQUEST, "stream": True}
    assert sent.headers["anthropic-beta"] == CALLER["anthropic-beta"]


async def test_streamed_request_body_is_untouched_when_it_already_streams(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    request = {**REQUEST, "stream": True}
    stream = await backend(session, fake_anthropic, api_key=KEY).open_stream(
        request, RequestOptions()
    )
    assert [e["type"] async for e in stream][-1] == "message_stop"
    assert fake_anthropic.requests[-1].body == request


async def test_error_event_mid_stream(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    events, names = anthropic_text_events(["Hel"])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    chunks = sse(events[:4], event_names=names[:4]) + sse([error], event_names=["error"])
    fake_anthropic.push(Reply(chunks=chunks))
    stream = await backend(session, fake_anthropic, sleeps, api_key=KEY).open_stream(
        REQUEST, RequestOptions()
    )
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        async for event in stream:
            received.append(event)
    assert received == events[:4]
    assert isinstance(caught.value.__cause__, UpstreamOverloaded)
    assert "Overloaded" in str(caught.value)
    assert len(fake_anthropic.requests) == 1
    assert sleeps.delays == []


async def test_error_event_before_anything_is_retried(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    fake_anthropic.push(Reply(chunks=sse([error], event_names=["error"])))
    stream = await backend(session, fake_anthropic, sleeps, api_key=KEY).open_stream(
        REQUEST, RequestOptions()
    )
    assert [e["type"] async for e in stream][-1] == "message_stop"
    assert stream.attempts == 2
    assert len(sleeps.delays) == 1


async def test_error_event_as_the_only_answer_fails_with_its_type(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    fake_anthropic.push(*[Reply(chunks=sse([error], event_names=["error"])) for _ in range(2)])
    with pytest.raises(UpstreamRateLimited) as caught:
        await backend(session, fake_anthropic, api_key=KEY).open_stream(REQUEST, RequestOptions())
    assert caught.value.status == 429
    assert "slow down" in str(caught.value)


async def test_truncated_stream(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    events, names = anthropic_text_events(["Hel", "lo"])
    fake_anthropic.push(Reply(chunks=sse(events[:5], event_names=names[:5])))
    stream = await backend(session, fake_anthropic, api_key=KEY).open_stream(
        REQUEST, RequestOptions()
    )
    with pytest.raises(StreamInterrupted) as caught:
        async for _ in stream:
            pass
    assert "truncated" in str(caught.value)
    assert not stream.completed


async def test_reply_that_is_not_a_message(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    fake_anthropic.push(Reply(body={"hello": "world"}))
    with pytest.raises(ProtocolError) as caught:
        await backend(session, fake_anthropic, api_key=KEY).complete(REQUEST, RequestOptions())
    assert "anthropic" in str(caught.value)


async def test_list_models_and_health(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    client = backend(session, fake_anthropic, api_key=KEY)
    models = await client.list_models()
    assert [m.id for m in models] == ["claude-sonnet-4-5"]
    assert fake_anthropic.requests[-1].headers["x-api-key"] == KEY
    report = await client.health()
    assert report.ok
    assert report.detail == "1 models"
    fake_anthropic.push(
        Reply(status=500, body={"type": "error", "error": {"type": "api_error", "message": "x"}})
    )
    report = await client.health()
    assert not report.ok
    assert "HTTP 500" in report.detail


def test_default_settings() -> None:
    settings = AnthropicSettings(type="anthropic")
    assert settings.base_url == "https://api.anthropic.com"
    assert settings.anthropic_version == "2023-06-01"


async def test_thinking_blocks_made_by_ccrelay_are_dropped_and_anthropic_s_own_kept(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    """After a failover (or /model) from another backend, the history holds thinking blocks
    ccrelay made; Anthropic would refuse their signature. Its own signed ones stay."""
    history = {
        **REQUEST,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=cli;",
            }
        ],
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "", "signature": "ccrelay-unsigned"},
                    {"type": "text", "text": "from qwen"},
                ],
            },
            {"role": "user", "content": "b"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "mine", "signature": "EqQBCkYI..."},
                    {"type": "text", "text": "from claude"},
                ],
            },
            {"role": "user", "content": "c"},
        ],
    }
    original = copy.deepcopy(history)
    await backend(session, fake_anthropic, api_key=KEY).complete(history, RequestOptions())
    sent = fake_anthropic.requests[-1].body
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "from qwen"}]
    assert sent["messages"][3] == history["messages"][3]  # Anthropic's own thinking kept
    assert sent["system"] == history["system"]  # the billing line stays for Anthropic
    assert history == original  # the caller's request is not changed
