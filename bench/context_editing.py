"""What emulating Anthropic's context editing saves over a long Claude Code session, and what it
costs a request.

Run through ``python -m bench context_editing``. A seeded session of 80 requests (``--quick``
only times fewer runs) starts from a Claude Code request's ``system`` and ``tools`` (a captured body when
``CCRELAY_BENCH_REQUEST`` names one, e.g. Claude Code 2.1.332's; else the Claude Code-shaped
request of ``bench/_payloads.py``), then adds one tool round per request: an assistant message
(thinking, a line of text, a Read, Bash or Edit call) and its result, 200-8000 tokens for a
Read, 200-3000 for Bash, 200-800 for an Edit, with a new user task every 6-12 rounds. Every
request carries what a user with context editing configured sends: Claude Code's own
``clear_thinking_20251015`` (``keep: "all"``) and a ``clear_tool_uses_20250919`` edit
(trigger 30000 input tokens, keep 3). The figures are the prompt tokens sent upstream
(`estimate_tokens`) per request and in total, with the edits emulated and without (what ccrelay
sent before issue 23), and what `apply_context_management` costs (timeit, best of 5).
"""

from __future__ import annotations

import json
import os
import random
import timeit
from pathlib import Path
from typing import Any

from bench._payloads import claude_code_request
from bench._table import Row
from ccrelay_translate import apply_context_management, estimate_tokens
from ccrelay_translate.tokens import estimate_text

__all__ = ["rows", "session_requests"]

REQUESTS = 80
SEED = 23
TRIGGER_TOKENS = 30_000
KEEP_TOOL_USES = 3
EDITS = {
    "edits": [
        {"type": "clear_thinking_20251015", "keep": "all"},
        {
            "type": "clear_tool_uses_20250919",
            "trigger": {"type": "input_tokens", "value": TRIGGER_TOKENS},
            "keep": {"type": "tool_uses", "value": KEEP_TOOL_USES},
        },
    ]
}
CLAUDE_CODE_EDITS = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
SAVING_TARGET = 0.5
FAST_PATH_TARGET_US = 20.0
_SIZES = {"Read": (200, 8000), "Bash": (200, 3000), "Edit": (200, 800)}


def _base() -> tuple[dict[str, Any], str]:
    path = os.environ.get("CCRELAY_BENCH_REQUEST")
    if path:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        source = Path(path).name
    else:
        body, source = claude_code_request(0), "bench/_payloads.py"
    base = {
        "model": body.get("model", "claude-opus-4-8"),
        "max_tokens": body.get("max_tokens", 64000),
        "system": body["system"],
        "tools": body["tools"],
        "thinking": {"type": "adaptive"},
        "stream": True,
    }
    return base, source


def _text(rng: random.Random, tokens: int, kind: str) -> str:
    """About `tokens` tokens (by `estimate_text`) of a Read listing, test output or a diff."""
    words = ["value", "items", "parser", "config", "result", "cache", "token", "index", "reply"]
    lines = []
    for n in range(1, 40):
        a, b = rng.choice(words), rng.choice(words)
        if kind == "Read":
            lines.append(f"{n:6d}\t    {a}_{n} = {b}.get({a!r}, {rng.randint(0, 999)})")
        elif kind == "Bash":
            lines.append(f"tests/test_{a}.py::test_{b}_{n} PASSED [{rng.randint(1, 99):3d}%]")
        else:
            lines.append(f"{n:6d}\t        return self.{a}({b}, limit={rng.randint(1, 64)})")
    block = "\n".join(lines) + "\n"
    per_block = estimate_text(block)
    return block * max(1, round(tokens / per_block))


def _session(rng: random.Random, rounds: int) -> list[dict[str, Any]]:
    """The messages of the whole session; request k ends with the k-th tool result."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the failing parser tests."}]}
    ]
    until_next_task = rng.randint(6, 12)
    for n in range(rounds):
        if until_next_task == 0:
            messages.append(
                {"role": "assistant", "content": [{"type": "text", "text": f"Done with task {n}."}]}
            )
            task = f"Now task {n}: tidy the module and run the tests."
            messages.append({"role": "user", "content": [{"type": "text", "text": task}]})
            until_next_task = rng.randint(6, 12)
        until_next_task -= 1
        tool = rng.choices(["Read", "Bash", "Edit"], weights=[5, 3, 2])[0]
        path = f"/repo/src/pkg/module_{rng.randint(1, 40)}.py"
        tool_input: dict[str, Any] = {
            "Read": {"file_path": path},
            "Bash": {"command": "python -m pytest -q tests/", "description": "Run the tests"},
            "Edit": {
                "file_path": path,
                "old_string": _text(rng, rng.randint(30, 200), "Edit"),
                "new_string": _text(rng, rng.randint(30, 200), "Edit"),
            },
        }[tool]
        thought = "I should check what the test expects before changing anything. "
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": thought * rng.randint(1, 8),
                        "signature": "EqQBCkYIBxgCKkD" * 20,
                    },
                    {"type": "text", "text": f"Step {n}: {tool} {path}."},
                    {"type": "tool_use", "id": f"toolu_{n:04d}", "name": tool, "input": tool_input},
                ],
            }
        )
        low, high = _SIZES[tool]
        result = _text(rng, rng.randint(low, high), tool)
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{n:04d}", "content": result}
                ],
            }
        )
    return messages


def session_requests(count: int) -> tuple[list[dict[str, Any]], str]:
    """The session's `count` requests (each with `EDITS`), and where system and tools came from."""
    base, source = _base()
    messages = _session(random.Random(SEED), count)
    ends = [i + 1 for i, m in enumerate(messages) if _is_tool_result(m)]
    requests = [{**base, "messages": messages[:end], "context_management": EDITS} for end in ends]
    return requests, source


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message["content"]
    return isinstance(content, list) and content[0].get("type") == "tool_result"


def _best_us(call: Any, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def rows(quick: bool) -> list[Row]:
    requests, source = session_requests(REQUESTS)
    plain, edited, triggered = [], [], 0
    for request in requests:
        out, applied = apply_context_management(request, count_tokens=estimate_tokens)
        plain.append(estimate_tokens(request))
        edited.append(estimate_tokens(out))
        triggered += any(e["type"] == "clear_tool_uses_20250919" for e in applied or ())
    ratio = sum(edited) / sum(plain)
    table = [
        Row(f"session: requests (system and tools: {source})", len(requests), "requests"),
        Row("prompt tokens sent, edits emulated (total)", sum(edited), "tokens"),
        Row("  prompt tokens sent, edits dropped (total)", sum(plain), "tokens"),
        Row(
            "emulated / dropped, total",
            ratio,
            "x",
            f"<= {SAVING_TARGET}",
            ratio <= SAVING_TARGET,
        ),
        Row("largest prompt, edits emulated", max(edited), "tokens"),
        Row("  largest prompt, edits dropped", max(plain), "tokens"),
        Row("requests where clear_tool_uses applied", triggered, "requests"),
    ]
    step = max(1, len(requests) // 8)
    for k in range(step - 1, len(requests), step):
        table.append(
            Row(f"  request {k + 1}: sent, emulated", edited[k], f"tokens (dropped: {plain[k]:,})")
        )
    first = requests[0]
    claude_code = {**first, "context_management": CLAUDE_CODE_EDITS}
    number = 200 if quick else 2000
    fast = _best_us(
        lambda: apply_context_management(claude_code, count_tokens=estimate_tokens), number
    )
    counted = _best_us(
        lambda: apply_context_management(first, count_tokens=estimate_tokens), number // 10
    )
    given = _best_us(
        lambda: apply_context_management(
            first, count_tokens=estimate_tokens, input_tokens=plain[0]
        ),
        number,
    )
    last = requests[-1]
    clearing = _best_us(lambda: apply_context_management(last, count_tokens=estimate_tokens), 20)
    table += [
        Row(
            "apply, Claude Code's own edit (keep all)",
            fast,
            "us/request",
            f"<= {FAST_PATH_TARGET_US:g}",
            fast <= FAST_PATH_TARGET_US,
        ),
        Row("  apply, + clear_tool_uses under its trigger, count given", given, "us/request"),
        Row("  apply, + clear_tool_uses under its trigger, counted here", counted, "us/request"),
        Row(f"  apply, clearing (request {len(requests)})", clearing, "us/request"),
    ]
    return table
