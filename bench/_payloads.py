"""The canned payloads the benchmarks send and answer with."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["claude_code_request", "openai_completion"]


def claude_code_request(target_bytes: int = 50_000) -> dict[str, Any]:
    """A Claude Code-shaped Messages request of about `target_bytes` of JSON."""
    tools = []
    for i, name in enumerate(
        [
            "Task",
            "Bash",
            "Glob",
            "Grep",
            "LS",
            "Read",
            "Edit",
            "MultiEdit",
            "Write",
            "NotebookEdit",
            "WebFetch",
            "TodoWrite",
            "WebSearch",
            "BashOutput",
            "KillShell",
            "mcp__github__search_code",
        ]
    ):
        tools.append(
            {
                "name": name,
                "description": f"{name}: " + "Performs the operation described here. " * 30,
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "An absolute path " * 5},
                        "pattern": {"type": "string", "description": "A glob or regex " * 5},
                        "limit": {"type": "number", "description": "At most this many"},
                    },
                    "required": ["path"],
                    "additionalProperties": False,
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
                **({"defer_loading": True} if i == 15 else {}),
            }
        )
    system = [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": {"type": "ephemeral"},
        },
        {
            "type": "text",
            "text": "You are an interactive CLI tool that helps users with software "
            "engineering tasks. " * 120,
            "cache_control": {"type": "ephemeral"},
        },
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the failing test."}]}
    ]
    request = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": system,
        "messages": messages,
        "tools": tools,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "user_bench_account_0_session_0"},
    }
    turn = 0
    while len(json.dumps(request)) < target_bytes:
        turn += 1
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {turn}: reading the file."},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{turn:04d}",
                        "name": "Read",
                        "input": {"path": f"/repo/src/module_{turn}.py"},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{turn:04d}",
                        "content": "".join(
                            f"{n:6d}\tdef function_{n}(value):\n" for n in range(40)
                        ),
                    }
                ],
            }
        )
    messages.append({"role": "user", "content": "Now run the tests."})
    return request


def openai_completion(
    content: str,
    *,
    completion_tokens: int,
    prompt_tokens: int = 12000,
    model: str = "bench-model",
    created: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """A finished, non-streamed OpenAI chat completion answering `content` (`extra`: more
    top-level fields, placed after ``model``)."""
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": created,
        "model": model,
        **extra,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
