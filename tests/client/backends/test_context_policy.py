"""The tool clearing the gateway adds for a small window (ccrelay.backends.context_policy).

Claude Code 2.1.332 asks only for ``clear_thinking_20251015`` (``keep: all``), so on a small
window nothing would clear its old tool results. A non-Anthropic backend whose window is known
and small gets a ``clear_tool_uses_20250919`` edit added (trigger: 0.6 of its prompt limit,
keep 3, clear at least 4000 tokens by default), applied as Anthropic applies it; the model's
usage stays what it saw, and ``applied_edits`` says what was cleared.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from ccrelay.backends.anthropic import AnthropicBackend, AnthropicSettings
from ccrelay.backends.context_policy import (
    tokens_after_edits,
    tool_clearing_edit,
    with_tool_clearing,
)
from ccrelay.backends.openai import OpenAIBackend, OpenAISettings
from ccrelay.backends.runpod import RunPodBackend, RunPodSettings
from ccrelay.backends.types import RequestOptions
from ccrelay_translate import CLEARED_TOOL_RESULT, apply_context_management, estimate_tokens
from tests.fakes.openai_compat import ProfiledServer
from tests.fakes.providers import FakeAnthropic

CLAUDE_CODE_EDITS = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
"""What Claude Code 2.1.332 asks for on every main request (tests/client/gateway/
test_claude_code_332.py checks it on the real CLI)."""
WINDOW = 16_384
LIMIT = WINDOW - 2048  # the default reserve: 1/8 of the window, at most 4096
RESULT_CHARS = 6000


def session_with_reads(count: int, **fields: Any) -> dict[str, Any]:
    """Claude Code's request after `count` Read tool uses, each with a result of 6000 chars."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "read the files"}]
    for n in range(count):
        use_id = f"toolu_{n:02d}"
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": use_id, "name": "Read", "input": {"n": n}}],
            }
        )
        text = f"file {n}: " + "x" * RESULT_CHARS
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use_id, "content": text}],
            }
        )
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 512,
        "messages": messages,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "context_management": CLAUDE_CODE_EDITS,
        **fields,
    }


def openai(session: aiohttp.ClientSession, server: ProfiledServer, **fields: Any) -> OpenAIBackend:
    values = {
        "type": "openai",
        "base_url": server.base_url,
        "model": "fake-model",
        "retry": {"max_attempts": 1},
        "context_window": WINDOW,
        **fields,
    }
    return OpenAIBackend("vllm", OpenAISettings.model_validate(values), session)


def tool_results(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def prompt_tokens(server: ProfiledServer) -> int:
    """What the fake model read of the last request (its usage.prompt_tokens)."""
    return server.profile.seen(server.requests[-1])[1]


async def test_old_results_are_cleared_on_a_small_window(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    server = await profiled("openai")
    request = session_with_reads(6)
    assert estimate_tokens(request) > 0.6 * LIMIT  # past the trigger
    completion = await openai(session, server).complete(request, RequestOptions())
    results = tool_results(server.requests[-1])
    assert results[:3] == [CLEARED_TOOL_RESULT] * 3
    assert all(r.startswith(f"file {n}: x") for n, r in enumerate(results[3:], 3))  # keep 3
    response = completion.response
    (cleared,) = response["context_management"]["applied_edits"]
    assert cleared["type"] == "clear_tool_uses_20250919"
    assert cleared["cleared_tool_uses"] == 3
    assert cleared["cleared_input_tokens"] >= 4000
    # usage is what the model read (the edited prompt), as Anthropic reports it
    assert response["usage"]["input_tokens"] == prompt_tokens(server)
    assert prompt_tokens(server) < estimate_tokens(request) - 3000
    assert request["context_management"] == CLAUDE_CODE_EDITS  # the caller's dict is untouched


async def test_a_stream_is_edited_the_same_way(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    server = await profiled("openai")
    stream = await openai(session, server).open_stream(
        session_with_reads(6, stream=True), RequestOptions()
    )
    events = [event async for event in stream]
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    assert [e["type"] for e in delta["context_management"]["applied_edits"]] == [
        "clear_tool_uses_20250919"
    ]
    assert tool_results(server.requests[-1])[:3] == [CLEARED_TOOL_RESULT] * 3


async def test_under_the_trigger_nothing_is_cleared(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    server = await profiled("openai")
    request = session_with_reads(3)
    assert estimate_tokens(request) < 0.6 * LIMIT
    completion = await openai(session, server).complete(request, RequestOptions())
    assert CLEARED_TOOL_RESULT not in json.dumps(server.requests[-1])
    assert completion.response["context_management"] == {"applied_edits": []}


@pytest.mark.parametrize(
    "fields",
    [
        {"context_editing": {"clear_tool_uses": None}},  # turned off
        {"context_window": None},  # unknown window: no fraction to take
        {"context_window": 300_000},  # past max_window_tokens
        {
            "context_window": 32_768,
            "context_editing": {"clear_tool_uses": {"max_window_tokens": 16_384}},
        },
    ],
    ids=["off", "unknown-window", "large-window", "own-max-window"],
)
async def test_no_edit_is_added_when_the_policy_does_not_apply(
    session: aiohttp.ClientSession, profiled: Any, fields: dict[str, Any]
) -> None:
    server = await profiled("openai")
    backend = openai(session, server, **fields)
    assert tool_clearing_edit(backend) is None
    await backend.complete(session_with_reads(40), RequestOptions())
    assert CLEARED_TOOL_RESULT not in json.dumps(server.requests[-1])


async def test_the_request_s_own_tool_clearing_wins(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    """Claude Code's after-idle edit (or any client's) is applied as it asked, not ours."""
    server = await profiled("openai")
    own = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "tool_uses", "value": 100},
    }
    edits = {"edits": [*CLAUDE_CODE_EDITS["edits"], own]}
    request = session_with_reads(6, context_management=edits)
    backend = openai(session, server)
    assert with_tool_clearing(request, backend) is request
    await backend.complete(request, RequestOptions())
    assert CLEARED_TOOL_RESULT not in json.dumps(server.requests[-1])


async def test_a_request_without_context_management_gets_the_edit(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    """The window is the backend's, whoever the client is."""
    server = await profiled("openai")
    request = session_with_reads(6)
    del request["context_management"]
    completion = await openai(session, server).complete(request, RequestOptions())
    assert tool_results(server.requests[-1])[:3] == [CLEARED_TOOL_RESULT] * 3
    assert completion.response["context_management"]["applied_edits"][0]["cleared_tool_uses"] == 3


def test_the_edit_follows_the_policy_and_the_prompt_limit(session: aiohttp.ClientSession) -> None:
    settings = OpenAISettings.model_validate(
        {
            "type": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
            "context_window": 32_768,
            "output_reserve_tokens": 2768,
            "context_editing": {
                "clear_tool_uses": {
                    "at_fraction": 0.5,
                    "keep_tool_uses": 5,
                    "clear_at_least_tokens": 1000,
                }
            },
        }
    )
    assert tool_clearing_edit(OpenAIBackend("b", settings, session)) == {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 15_000},
        "keep": {"type": "tool_uses", "value": 5},
        "clear_at_least": {"type": "input_tokens", "value": 1000},
    }


def test_a_malformed_context_management_is_left_for_the_translation_to_refuse(
    session: aiohttp.ClientSession,
) -> None:
    settings = OpenAISettings.model_validate(
        {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "context_window": WINDOW}
    )
    backend = OpenAIBackend("b", settings, session)
    for bad in ("all", {"edits": "all"}):
        request = session_with_reads(1, context_management=bad)
        assert with_tool_clearing(request, backend) is request


def test_a_runpod_backend_adds_it_for_the_worker_s_window(session: aiohttp.ClientSession) -> None:
    """The worker applies ``context_management``: the edit rides in the body it is sent."""
    settings = RunPodSettings(type="runpod", endpoint_url="http://127.0.0.1:9/v2/ep")
    backend = RunPodBackend("rp", settings, session)
    body = backend._body(session_with_reads(1), "qwen3-coder:30b", stream=True)
    edits = body["context_management"]["edits"]
    assert edits[0] == CLAUDE_CODE_EDITS["edits"][0]  # clear_thinking stays first
    assert edits[1]["type"] == "clear_tool_uses_20250919"
    backend.reported_context_window = 1_048_576  # the worker said its window is large
    body = backend._body(session_with_reads(1), "qwen3-coder:30b", stream=True)
    assert body["context_management"] == CLAUDE_CODE_EDITS


async def test_an_anthropic_backend_never_gets_it(
    fake_anthropic: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    settings = AnthropicSettings.model_validate(
        {
            "type": "anthropic",
            "base_url": fake_anthropic.url,
            "api_key": "sk-ant-test",
            "context_window": WINDOW,
        }
    )
    request = session_with_reads(6)
    await AnthropicBackend("anthropic", settings, session).complete(request, RequestOptions())
    assert fake_anthropic.requests[-1].body["context_management"] == CLAUDE_CODE_EDITS
    with pytest.raises(ValidationError, match="does not apply to an anthropic backend"):
        AnthropicSettings.model_validate(
            {"type": "anthropic", "context_editing": {"clear_tool_uses": None}}
        )


def test_bad_policy_values_are_refused() -> None:
    base = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
    for policy in ({"at_fraction": 0}, {"at_fraction": 1.5}, {"keep_tool_uses": -1}, {"x": 1}):
        with pytest.raises(ValidationError):
            OpenAISettings.model_validate({**base, "context_editing": {"clear_tool_uses": policy}})


async def test_tokens_after_edits_is_what_the_model_will_read(
    session: aiohttp.ClientSession, profiled: Any
) -> None:
    """For the router's window check: a prompt over the limit before the edits may fit after."""
    server = await profiled("openai")
    backend = openai(session, server)
    request = session_with_reads(12)
    tokens = estimate_tokens(request)
    assert tokens > LIMIT
    after = tokens_after_edits(backend, request, tokens)
    assert after < LIMIT
    edited, _ = apply_context_management(
        with_tool_clearing(request, backend), count_tokens=estimate_tokens
    )
    assert after == estimate_tokens(edited)
    off = openai(session, server, context_editing={"clear_tool_uses": None})
    assert tokens_after_edits(off, request, tokens) == tokens
