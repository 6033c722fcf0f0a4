"""Context editing and the start-up probe on OpenAI-style backends: what Anthropic does
server-side, done before translation (issue 23)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ccrelay.backends.anthropic import AnthropicBackend, AnthropicSettings
from ccrelay.backends.openai import OpenAIBackend, OpenAISettings
from ccrelay.backends.types import RequestOptions
from ccrelay_translate import CLEARED_TOOL_RESULT
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply
from tests.stream_check import check_stream

EDITS = {
    "edits": [
        {"type": "clear_thinking_20251015", "keep": "all"},
        {
            "type": "clear_tool_uses_20250919",
            "trigger": {"type": "tool_uses", "value": 2},
            "keep": {"type": "tool_uses", "value": 1},
        },
    ]
}


def session_with_tool_uses(count: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "read the files"}]
    for n in range(count):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"n": n}}
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": "x" * 4000}
                ],
            }
        )
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 512,
        "messages": messages,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "context_management": EDITS,
    }


def openai(session: aiohttp.ClientSession, fake: FakeOpenAI) -> OpenAIBackend:
    settings = OpenAISettings.model_validate(
        {"type": "openai", "base_url": fake.base_url, "model": "m", "retry": {"max_attempts": 1}}
    )
    return OpenAIBackend("vllm", settings, session)


def tool_results(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


async def test_edits_are_applied_before_translation_and_reported(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    completion = await openai(session, fake_openai).complete(
        session_with_tool_uses(4), RequestOptions()
    )
    sent = fake_openai.requests[-1].body
    assert "context_management" not in sent  # no OpenAI-style upstream takes it
    assert tool_results(sent)[:3] == [CLEARED_TOOL_RESULT] * 3
    assert tool_results(sent)[3] == "x" * 4000  # the most recent tool use is kept
    (cleared,) = [
        edit
        for edit in completion.response["context_management"]["applied_edits"]
        if edit["type"] == "clear_tool_uses_20250919"
    ]
    assert cleared["cleared_tool_uses"] == 3
    assert cleared["cleared_input_tokens"] > 0


async def test_a_stream_reports_the_edits_on_its_message_delta(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    stream = await openai(session, fake_openai).open_stream(
        {**session_with_tool_uses(4), "stream": True}, RequestOptions()
    )
    events = [event async for event in stream]
    check_stream(events)
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    applied = delta["context_management"]["applied_edits"]  # top level, beside delta and usage
    assert any(edit["type"] == "clear_tool_uses_20250919" for edit in applied)


async def test_a_request_without_edits_reports_none(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    request = session_with_tool_uses(4)
    del request["context_management"]
    completion = await openai(session, fake_openai).complete(request, RequestOptions())
    assert "context_management" not in completion.response
    assert CLEARED_TOOL_RESULT not in tool_results(fake_openai.requests[-1].body)


async def test_the_anthropic_pass_through_leaves_the_edits_to_anthropic(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    settings = AnthropicSettings.model_validate(
        {"type": "anthropic", "base_url": fake_anthropic.url, "api_key": "sk-ant-test"}
    )
    request = session_with_tool_uses(4)
    await AnthropicBackend("anthropic", settings, session).complete(request, RequestOptions())
    sent = fake_anthropic.requests[-1].body
    assert sent["context_management"] == EDITS
    assert sent["messages"] == request["messages"]


REFUSED = Reply(
    status=400,
    body={
        "error": {
            "message": "max_tokens is too small for reasoning",
            "type": "invalid_request_error",
        }
    },
)
PROBE = {
    "model": "claude-opus-5-5",
    "max_tokens": 1,
    "messages": [{"role": "user", "content": "x"}],
}


async def test_a_refused_max_tokens_1_probe_is_answered_as_anthropic_does(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(REFUSED)
    completion = await openai(session, fake_openai).complete(dict(PROBE), RequestOptions())
    response = completion.response
    assert (response["stop_reason"], response["content"]) == ("max_tokens", [])
    fake_openai.push(REFUSED)
    stream = await openai(session, fake_openai).open_stream(
        {**PROBE, "stream": True}, RequestOptions()
    )
    message = check_stream([event async for event in stream])
    assert message.stop_reason == "max_tokens"


async def test_a_refused_ordinary_request_is_still_refused(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    from ccrelay.errors import UpstreamInvalidRequest

    fake_openai.push(REFUSED)
    try:
        await openai(session, fake_openai).complete({**PROBE, "max_tokens": 512}, RequestOptions())
    except UpstreamInvalidRequest as exc:
        assert "too small" in exc.message
    else:
        raise AssertionError("a 400 for a normal request must reach the caller")
