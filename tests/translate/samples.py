"""Shared sample data for the translate tests: a Claude Code-sized request, chunk builders, and
checks of event streams against the real Anthropic SDK's types and accumulator."""

from __future__ import annotations

from typing import Any

from tests.stream_check import check_stream

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _schema(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


TOOL_NAMES = [
    "Task",
    "Bash",
    "Glob",
    "Grep",
    "Read",
    "Edit",
    "Write",
    "NotebookEdit",
    "WebFetch",
    "TodoWrite",
    "WebSearch",
    "mcp__github__search_code",
]


def claude_code_tools() -> list[dict[str, Any]]:
    """Twelve client tools shaped like Claude Code's (one deferred), plus two server tools."""
    tools: list[dict[str, Any]] = []
    for name in TOOL_NAMES:
        tools.append(
            {
                "name": name,
                "description": f"{name}: does the {name.lower()} thing.\n\nUsage notes...",
                "input_schema": _schema(
                    path={"type": "string", "description": "an absolute path"},
                    limit={"type": "number"},
                ),
            }
        )
    tools[-1]["defer_loading"] = True
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    tools[3]["strict"] = True
    tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    tools.append({"type": "bash_20250124", "name": "bash"})
    return tools


def claude_code_request() -> dict[str, Any]:
    """What Claude Code 2.x sends mid-session (JSON-decoded), every awkward feature included."""
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": True,
        "temperature": 1,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.197.a3f; cc_entrypoint=cli;",
            },
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "You are an interactive CLI tool that helps users with software "
                "engineering tasks.\n\n# Tone and style\n...",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>\nAs you answer, use this context.\n"
                        "</system-reminder>",
                    },
                    {"type": "text", "text": "Fix the failing test in tests/test_app.py"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "I should look at the test first.",
                        "signature": "EqQBCkYIBxgCKkD...",
                    },
                    {"type": "text", "text": "I'll read the test and the screenshot."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "Read",
                        "input": {"path": "/repo/tests/test_app.py"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01B",
                        "name": "Read",
                        "input": {"path": "/repo/screenshot.png"},
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": "     1\tdef test_add():\n     2\t    assert add(1, 1) == 3\n",
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "content": [
                            {"type": "text", "text": "Screenshot of the failure"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_B64,
                                },
                            },
                        ],
                    },
                    {
                        "type": "text",
                        "text": "<system-reminder>Todo list is empty</system-reminder>",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {
                "role": "system",
                "content": "The user changed the working directory to /repo.",
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy..."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01C",
                        "name": "Bash",
                        "input": {"command": "pytest -q", "timeout": 120000},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01C",
                        "is_error": True,
                        "content": "Exit code 1\nFAILED tests/test_app.py::test_add",
                    }
                ],
            },
        ],
        "tools": claude_code_tools(),
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "adaptive"},
        "context_management": {
            "edits": [
                {
                    "type": "clear_tool_uses_20250919",
                    "trigger": {"type": "input_tokens", "value": 100000},
                }
            ]
        },
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_abc_account_123_session_456"},
        "service_tier": "auto",
        "top_k": 40,
        "container": "container_011",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "ex"}],
        "betas": ["context-management-2025-06-27"],
    }


# -- OpenAI chunks --------------------------------------------------------------------------


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    chunk_id: str = "chatcmpl-abc",
    **choice_extra: Any,
) -> dict[str, Any]:
    """A chat.completion.chunk with one choice (as OpenAI sends with include_usage: usage null)."""
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "qwen-3-coder-480b",
        "choices": [
            {"index": 0, "delta": delta or {}, "finish_reason": finish_reason, **choice_extra}
        ],
        "usage": usage,
    }


def usage_chunk(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "qwen-3-coder-480b",
        "choices": [],
        "usage": usage,
    }


def tool_delta(
    index: int, *, call_id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    call: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        call["id"] = call_id
        call["type"] = "function"
    return {"tool_calls": [call]}


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# -- checks against the real Anthropic SDK ---------------------------------------------------


def check_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """`tests.stream_check.check_stream` (the strict order check and the SDK's accumulator),
    as a plain dict without the fields the SDK leaves unset."""
    return check_stream(events).model_dump(exclude_none=True)
