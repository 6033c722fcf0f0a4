"""openai_to_anthropic_response: content, tool calls, stop reasons, usage, garbage."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from ccrelay_translate import RAW_ARGUMENTS_KEY, openai_to_anthropic_response
from ccrelay_translate.errors import MalformedReply


def completion(
    message: dict[str, Any],
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    **choice_extra: Any,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "qwen-3-coder-480b",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, **choice_extra}
        ],
        "usage": usage
        if usage is not None
        else {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
    }


def convert(response: dict[str, Any]) -> dict[str, Any]:
    out = openai_to_anthropic_response(response, model="claude-sonnet-4-5", backend="cerebras")
    Message.model_validate(out)  # the real SDK type accepts it
    return out


def test_text_reply() -> None:
    out = convert(completion({"role": "assistant", "content": "Hello!"}))
    assert out["id"].startswith("msg_") and "chatcmpl" not in out["id"]
    assert out == {
        "id": out["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 7},
    }


def test_text_and_tool_calls() -> None:
    out = convert(
        completion(
            {
                "role": "assistant",
                "content": "Reading both.",
                "reasoning_content": "internal musings",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"path": "/a"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "Glob", "arguments": ""},
                    },
                ],
            },
            finish_reason="tool_calls",
        )
    )
    assert out["content"] == [
        {"type": "text", "text": "Reading both."},
        {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"path": "/a"}},
        {"type": "tool_use", "id": "call_2", "name": "Glob", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert "internal musings" not in str(out)


def test_tool_call_without_text_or_id() -> None:
    out = convert(
        completion(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "Bash", "arguments": {"command": "ls"}},
                    }
                ],
            },
            finish_reason="tool_calls",
        )
    )
    (block,) = out["content"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_") and len(block["id"]) > 10
    assert block["input"] == {"command": "ls"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("   ", {}),
        (None, {}),
        ('"{\\"a\\": 1}"', {"a": 1}),  # double-encoded
        ('{"a": 1', {RAW_ARGUMENTS_KEY: '{"a": 1'}),  # cut short
        ("[1, 2]", {RAW_ARGUMENTS_KEY: "[1, 2]"}),
        ("not json", {RAW_ARGUMENTS_KEY: "not json"}),
        ('"just a string"', {RAW_ARGUMENTS_KEY: '"just a string"'}),
        ([1, 2], {RAW_ARGUMENTS_KEY: "[1,2]"}),
    ],
)
def test_tool_arguments_are_parsed_or_kept_raw(arguments: object, expected: dict[str, Any]) -> None:
    out = convert(
        completion(
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}],
            },
            finish_reason="tool_calls",
        )
    )
    assert out["content"][0]["input"] == expected


def test_legacy_function_call() -> None:
    out = convert(
        completion(
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "f", "arguments": '{"x":1}'},
            },
            finish_reason="function_call",
        )
    )
    assert out["content"][0]["name"] == "f"
    assert out["content"][0]["input"] == {"x": 1}
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish_reason", "has_tools", "extra", "stop_reason", "stop_sequence"),
    [
        ("stop", False, {}, "end_turn", None),
        ("length", False, {}, "max_tokens", None),
        ("content_filter", False, {}, "refusal", None),
        ("tool_calls", True, {}, "tool_use", None),
        ("stop", True, {}, "tool_use", None),  # Ollama ends tool turns with "stop"
        ("length", True, {}, "max_tokens", None),  # arguments cut short
        ("tool_calls", False, {}, "end_turn", None),
        ("stop", False, {"stop_reason": "END"}, "stop_sequence", "END"),  # vLLM
        ("stop", False, {"matched_stop": "###"}, "stop_sequence", "###"),  # SGLang
        ("stop", False, {"stop_reason": 151645}, "end_turn", None),  # a stop token, not a sequence
        ("eos", False, {}, "end_turn", None),
        (None, False, {}, "end_turn", None),
    ],
)
def test_stop_reasons(
    finish_reason: str | None,
    has_tools: bool,
    extra: dict[str, Any],
    stop_reason: str,
    stop_sequence: str | None,
) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if has_tools:
        message["tool_calls"] = [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]
    out = convert(completion(message, finish_reason, **extra))
    assert (out["stop_reason"], out["stop_sequence"]) == (stop_reason, stop_sequence)


def test_usage_with_cached_tokens() -> None:
    out = convert(
        completion(
            {"role": "assistant", "content": "x"},
            usage={
                "prompt_tokens": 1000,
                "completion_tokens": 20,
                "total_tokens": 1020,
                "prompt_tokens_details": {"cached_tokens": 768},
            },
        )
    )
    assert out["usage"] == {
        "input_tokens": 232,
        "output_tokens": 20,
        "cache_read_input_tokens": 768,
    }


@pytest.mark.parametrize("usage", [{}, {"total_tokens": 3}, {"prompt_tokens": None}])
def test_missing_usage_counts_are_zero(usage: dict[str, Any]) -> None:
    response = completion({"role": "assistant", "content": "x"}, usage=usage)
    assert convert(response)["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_no_usage_at_all() -> None:
    response = completion({"role": "assistant", "content": "x"})
    del response["usage"]
    assert convert(response)["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_empty_content_gives_no_text_block() -> None:
    out = convert(completion({"role": "assistant", "content": ""}))
    assert out["content"] == []


def test_content_parts_are_joined() -> None:
    out = convert(
        completion(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        )
    )
    assert out["content"] == [{"type": "text", "text": "ab"}]


def test_refusal_becomes_text() -> None:
    out = convert(
        completion(
            {"role": "assistant", "content": None, "refusal": "I can't help."}, "content_filter"
        )
    )
    assert out["content"] == [{"type": "text", "text": "I can't help."}]
    assert out["stop_reason"] == "refusal"


@pytest.mark.parametrize("openai_id", ["chatcmpl-9", "msg_keep", "chatcmpl-9"])
def test_every_reply_gets_a_fresh_id_never_the_upstream_s(openai_id: str) -> None:
    """Ollama's ids are chatcmpl-0..998 and repeat; Claude Code merges turns sharing an id."""
    response = completion({"role": "assistant", "content": "x"})
    response["id"] = openai_id
    first, second = convert(response)["id"], convert(response)["id"]
    assert first != second
    assert first.startswith("msg_") and openai_id not in first


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("none", None),
        (
            "summarized",
            {"type": "thinking", "thinking": "let me think", "signature": "ccrelay-unsigned"},
        ),
        ("omitted", {"type": "thinking", "thinking": "", "signature": "ccrelay-unsigned"}),
    ],
)
@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_becomes_a_leading_thinking_block(
    field: str, display: str, expected: dict[str, Any] | None
) -> None:
    response = completion({"role": "assistant", "content": "The answer.", field: "let me think"})
    out = openai_to_anthropic_response(
        response, model="claude-sonnet-4-5", backend="b", thinking_display=display
    )
    Message.model_validate(out)
    blocks = out["content"]
    assert blocks[-1] == {"type": "text", "text": "The answer."}  # never mixed into the text
    assert (blocks[0] if len(blocks) == 2 else None) == expected


def test_missing_id_gets_a_fresh_one() -> None:
    response = completion({"role": "assistant", "content": "x"})
    del response["id"]
    first, second = convert(response)["id"], convert(response)["id"]
    assert first.startswith("msg_") and second.startswith("msg_")
    assert first != second


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ([], "the chat completion is not a JSON object"),
        ({}, "the chat completion has no choices"),
        ({"choices": []}, "the chat completion has no choices"),
        ({"error": {"message": "model overloaded"}}, "has no choices: model overloaded"),
        ({"choices": "x"}, "has no choices"),
        ({"choices": ["x"]}, "choices[0] of the chat completion has no message object"),
        ({"choices": [{"message": "hi"}]}, "has no message object"),
        (
            {"choices": [{"message": {"content": 5}}]},
            "message.content of the chat completion is not text",
        ),
        (
            {"choices": [{"message": {"tool_calls": {}}}]},
            "message.tool_calls of the chat completion is not a list",
        ),
        (
            {"choices": [{"message": {"tool_calls": ["x"]}}]},
            "tool_calls[0] of the chat completion has no function",
        ),
    ],
)
def test_garbage_raises_protocol_error(response: object, message: str) -> None:
    with pytest.raises(MalformedReply) as info:
        openai_to_anthropic_response(response, model="m", backend="cerebras")  # type: ignore[arg-type]
    assert info.value.backend == "cerebras"
    assert message in info.value.message
    assert info.value.fault == "backend"


def test_backend_defaults_to_upstream() -> None:
    with pytest.raises(MalformedReply) as info:
        openai_to_anthropic_response({}, model="m")
    assert info.value.backend == "upstream"
