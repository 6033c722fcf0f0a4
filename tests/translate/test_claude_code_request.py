"""A Claude Code-sized request translated for an OpenAI target, checked field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccrelay_translate import anthropic_to_openai_request, estimate_tokens

from .samples import PNG_B64, TOOL_NAMES, claude_code_request


@pytest.fixture
def body() -> dict[str, Any]:
    return anthropic_to_openai_request(
        claude_code_request(), model="qwen-3-coder-480b", max_tokens_limit=8192
    )


def test_top_level_fields(body: dict[str, Any]) -> None:
    assert set(body) == {
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "stream_options",
    }
    assert body["model"] == "qwen-3-coder-480b"
    assert body["max_tokens"] == 8192  # 32000 clamped
    assert body["temperature"] == 1
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False


def test_nothing_anthropic_specific_leaks(body: dict[str, Any]) -> None:
    text = json.dumps(body)
    for needle in (
        "cache_control",
        "defer_loading",
        "strict",
        "thinking",
        "signature",
        "context_management",
        "clear_tool_uses",
        "effort",
        "user_abc",
        "container_011",
        "mcp.example",
        "input_schema",
        "web_search",
        "bash_20250124",
        "claude-sonnet",
        "top_k",
        "tool_use_id",
    ):
        assert needle not in text, needle


def test_roles_in_order(body: dict[str, Any]) -> None:
    assert [m["role"] for m in body["messages"]] == [
        "system",  # the top-level system blocks
        "user",
        "assistant",
        "tool",  # toolu_01A
        "tool",  # toolu_01B
        "user",  # the image out of toolu_01B's result, the reminder, the system message's text
        "assistant",
        "tool",  # toolu_01C, an error
    ]


def test_system_prompt(body: dict[str, Any]) -> None:
    assert body["messages"][0] == {
        "role": "system",
        "content": "You are Claude Code, Anthropic's official CLI for Claude.\n\n"
        "You are an interactive CLI tool that helps users with software engineering tasks."
        "\n\n# Tone and style\n...",
    }  # the billing-header block is gone: the same prefix in every session
    assert "x-anthropic-billing-header" not in json.dumps(body)


def test_the_billing_header_stays_for_anthropic_itself() -> None:
    kept = anthropic_to_openai_request(claude_code_request(), model="m", keep_billing=True)
    assert kept["messages"][0]["content"].startswith("x-anthropic-billing-header: cc_version=")


def test_first_user_turn(body: dict[str, Any]) -> None:
    assert body["messages"][1] == {
        "role": "user",
        "content": "<system-reminder>\nAs you answer, use this context.\n</system-reminder>"
        "\n\nFix the failing test in tests/test_app.py",
    }


def test_assistant_turn_with_thinking_and_two_tool_calls(body: dict[str, Any]) -> None:
    assert body["messages"][2] == {
        "role": "assistant",
        "content": "I'll read the test and the screenshot.",
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"path":"/repo/tests/test_app.py"}'},
            },
            {
                "id": "toolu_01B",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"path":"/repo/screenshot.png"}'},
            },
        ],
    }


def test_tool_results_and_their_image(body: dict[str, Any]) -> None:
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "toolu_01A",
        "content": "     1\tdef test_add():\n     2\t    assert add(1, 1) == 3\n",
    }
    assert body["messages"][4] == {
        "role": "tool",
        "tool_call_id": "toolu_01B",
        "content": "Screenshot of the failure\n\n(1 image(s) attached in the next user message)",
    }
    assert body["messages"][5] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Images from tool call toolu_01B:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            {"type": "text", "text": "<system-reminder>Todo list is empty</system-reminder>"},
            {
                "type": "text",
                "text": "<system-reminder>\nThe user changed the working directory to /repo."
                "\n</system-reminder>",
            },
        ],
    }  # the mid-conversation system message: its text kept, in the user turn at its place


def test_second_tool_round_with_an_error(body: dict[str, Any]) -> None:
    assert body["messages"][6] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_01C",
                "type": "function",
                "function": {
                    "name": "Bash",
                    "arguments": '{"command":"pytest -q","timeout":120000}',
                },
            }
        ],
    }
    assert body["messages"][7] == {
        "role": "tool",
        "tool_call_id": "toolu_01C",
        "content": "Error: Exit code 1\nFAILED tests/test_app.py::test_add",
    }


def test_every_tool_call_is_answered_right_after_it(body: dict[str, Any]) -> None:
    """OpenAI's ordering rule: the tool messages follow the assistant message that called them."""
    messages = body["messages"]
    for i, message in enumerate(messages):
        calls = [c["id"] for c in message.get("tool_calls", [])]
        if calls:
            answers = [m["tool_call_id"] for m in messages[i + 1 : i + 1 + len(calls)]]
            assert answers == calls


def test_tools(body: dict[str, Any]) -> None:
    tools = body["tools"]
    assert [t["function"]["name"] for t in tools] == TOOL_NAMES  # both server tools dropped
    for tool in tools:
        assert set(tool) == {"type", "function"}
        assert tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters"}
        assert tool["function"]["parameters"]["type"] == "object"
        assert tool["function"]["parameters"]["required"] == ["path", "limit"]
    deferred = tools[-1]["function"]
    assert deferred["name"] == "mcp__github__search_code"
    assert deferred["description"].startswith("mcp__github__search_code: does the")


def test_body_is_plain_json(body: dict[str, Any]) -> None:
    assert json.loads(json.dumps(body)) == body


def test_estimate_is_reasonable_for_this_request() -> None:
    request = claude_code_request()
    estimate = estimate_tokens(request)
    text_chars = len(json.dumps(request["system"])) + len(json.dumps(request["tools"]))
    assert 1_600 < estimate < 1_600 + text_chars  # one image plus about a quarter of the text
