"""Anthropic Messages jobs on the worker (RunPod's OpenAI route relays ``/v1/messages``): the
handler's outputs, read back as the gateway and Claude Code read them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccrelay_handler.runpod_handler import RunPodHandler
from ccrelay_handler.service import ChatService
from ccrelay_wire.sse import SSEDecoder
from tests.fakes.openai_compat import Answer
from tests.stream_check import check_stream

REQUEST: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "You are terse."}],
    "messages": [{"role": "user", "content": "hello worker"}],
}


@pytest.fixture
async def handler(service: ChatService) -> RunPodHandler:
    return RunPodHandler(service.settings, service=service)


async def outputs(
    handler: RunPodHandler, body: dict[str, Any], route: str = "/v1/messages"
) -> list:
    job = {"id": "job-1", "input": {"openai_route": route, "openai_input": body}}
    return [out async for out in handler.handle(job)]


def events_of(texts: list[str]) -> list[dict[str, Any]]:
    """The SSE text a streamed job yielded, read as RunPod relays it."""
    decoder = SSEDecoder()
    found = []
    for text in texts:
        assert isinstance(text, str)
        for event in decoder.feed(text.encode()):
            payload = json.loads(event.data)
            assert event.event == payload["type"]  # the event line names the type
            found.append(payload)
    assert list(decoder.flush()) == []
    return found


async def test_a_plain_messages_job_is_one_anthropic_message_and_a_repeat_is_a_hit(
    handler: RunPodHandler, ollama_server: Any
) -> None:
    (first,) = await outputs(handler, REQUEST)
    assert first["type"] == "message" and first["role"] == "assistant"
    assert first["content"] == [{"type": "text", "text": "Echo: hello worker"}]
    assert first["stop_reason"] == "end_turn"
    assert first["x_ccrelay_cache"] == "miss"
    (again,) = await outputs(handler, REQUEST)
    assert again["x_ccrelay_cache"] == "hit"
    assert again["content"] == first["content"]
    # the engine was asked once, as a chat completion with the worker's own model
    (asked,) = ollama_server.chat_requests
    assert asked.body["model"] == handler.settings.model
    assert asked.body["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_a_streamed_messages_job_is_anthropic_sse_the_sdk_reads(
    handler: RunPodHandler,
) -> None:
    texts = await outputs(handler, {**REQUEST, "stream": True})
    events = events_of(texts)
    message = check_stream(events)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello worker"
    assert events[0]["message"]["x_ccrelay_cache"] == "miss"
    replayed = events_of(await outputs(handler, {**REQUEST, "stream": True}))
    assert replayed[0]["message"]["x_ccrelay_cache"] == "hit"
    assert check_stream(replayed).content == message.content


async def test_streamed_and_plain_share_one_cache_entry(handler: RunPodHandler) -> None:
    await outputs(handler, REQUEST)
    events = events_of(await outputs(handler, {**REQUEST, "stream": True}))
    assert events[0]["message"]["x_ccrelay_cache"] == "hit"


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.2},
        {"system": "You are verbose."},
        {"tools": [{"name": "Read", "input_schema": {"type": "object"}}]},
        {"max_tokens": 100},
        {"stop_sequences": ["END"]},
    ],
)
async def test_the_cache_key_covers_what_changes_the_answer(
    handler: RunPodHandler, change: dict[str, Any]
) -> None:
    (first,) = await outputs(handler, REQUEST)
    (changed,) = await outputs(handler, {**REQUEST, **change})
    assert first["x_ccrelay_cache"] == "miss"
    assert changed["x_ccrelay_cache"] == "miss"


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"user_id": "someone-else"}},
        # the engine sees the same request: the stored answer is rendered with thinking blocks
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ],
)
async def test_what_does_not_change_the_engine_s_answer_still_hits(
    handler: RunPodHandler, change: dict[str, Any]
) -> None:
    await outputs(handler, REQUEST)
    (same,) = await outputs(handler, {**REQUEST, **change})
    assert same["x_ccrelay_cache"] == "hit"


async def test_a_prompt_over_the_window_is_refused_in_claude_code_s_words(
    make_settings: Any,
) -> None:
    settings = make_settings(OLLAMA_CONTEXT_LENGTH="2048")
    handler = RunPodHandler(settings, service=ChatService(settings))
    try:
        long = {**REQUEST, "messages": [{"role": "user", "content": "word " * 4000}]}
        (error,) = events_of(await outputs(handler, {**long, "stream": True}))
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        message = error["error"]["message"]
        assert message.startswith("prompt is too long: ")
        assert message.endswith(" tokens > 1792 maximum")
        (failed,) = await outputs(handler, long)  # not streamed: the job fails with the code
        assert json.loads(failed["error"])["code"] == "prompt_too_long"
    finally:
        await handler.service.aclose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**REQUEST, "messages": "hi"}, "messages"),
        ({**REQUEST, "max_tokens": 0}, "max_tokens"),
        (
            {**REQUEST, "messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "messages[0]",
        ),
    ],
)
async def test_a_bad_request_names_its_field(
    handler: RunPodHandler, body: dict[str, Any], field: str
) -> None:
    (error,) = events_of(await outputs(handler, {**body, "stream": True}))
    assert error["error"]["type"] == "invalid_request_error"
    assert field in error["error"]["message"]


async def test_json_nested_too_deep_is_refused_with_its_path(handler: RunPodHandler) -> None:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"x": schema}}
    body = {**REQUEST, "tools": [{"name": "Deep", "input_schema": schema}], "stream": True}
    (error,) = events_of(await outputs(handler, body))
    assert error["error"]["type"] == "invalid_request_error"
    assert "tools[0].input_schema" in error["error"]["message"]
    assert len(error["error"]["message"]) < 300


async def test_count_tokens_answers_the_estimate(handler: RunPodHandler) -> None:
    body = {key: value for key, value in REQUEST.items() if key != "max_tokens"}
    (count,) = await outputs(handler, body, "/v1/messages/count_tokens")
    assert isinstance(count["input_tokens"], int) and count["input_tokens"] > 0


async def test_a_tool_call_from_the_engine_is_an_anthropic_tool_use(
    handler: RunPodHandler, ollama_server: Any
) -> None:
    ollama_server.push(Answer(tool_calls=[("Read", '{"file_path": "a.py"}')]))
    tools = [
        {
            "name": "Read",
            "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
        }
    ]
    message = check_stream(
        events_of(await outputs(handler, {**REQUEST, "tools": tools, "stream": True}))
    )
    (block,) = [b for b in message.content if b.type == "tool_use"]
    assert block.name == "Read" and block.input == {"file_path": "a.py"}
    assert message.stop_reason == "tool_use"


async def test_context_editing_is_applied_in_the_worker_and_reported(
    handler: RunPodHandler, ollama_server: Any
) -> None:
    """Claude Code straight at the endpoint sends its edits to the worker: applied as Anthropic
    applies them, reported as Anthropic reports them."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "read them"}]
    for n in range(3):
        messages += [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": "y" * 3000}
                ],
            },
        ]
    edits = {
        "edits": [
            {
                "type": "clear_tool_uses_20250919",
                "trigger": {"type": "tool_uses", "value": 1},
                "keep": {"type": "tool_uses", "value": 1},
            }
        ]
    }
    body = {
        **REQUEST,
        "messages": messages,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "context_management": edits,
    }
    (message,) = await outputs(handler, body)
    (applied,) = message["context_management"]["applied_edits"]
    assert applied["cleared_tool_uses"] == 2
    sent = ollama_server.requests[-1]["messages"]
    assert sum("y" * 3000 in str(m.get("content")) for m in sent) == 1
    events = events_of(await outputs(handler, {**body, "stream": True}))
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    assert delta["context_management"]["applied_edits"][0]["cleared_tool_uses"] == 2
