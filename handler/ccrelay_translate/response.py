"""An OpenAI chat completion -> an Anthropic Messages response.

- ``id``: a fresh ``msg_`` id, never the upstream's (`new_message_id`); ``model``: the one
  given (what the caller asked for).
- ``content``: a leading ``thinking`` block for the reasoning (``reasoning`` /
  ``reasoning_content``), as Anthropic would show it for the request's ``thinking_display``:
  ``summarized`` its text, ``omitted`` an empty text, ``none`` (thinking not asked for) no
  block; reasoning is never mixed into the answer text. Then one text block when the message
  has text (a ``refusal`` counts as text when there is no content), then one ``tool_use``
  block per tool call (and for a legacy ``function_call``), ``input`` parsed from
  ``arguments`` by `tool_input` (malformed JSON is kept under ``_raw_arguments``, with a log
  line); its ``id`` the upstream's when Anthropic's rule allows it, else reversibly encoded,
  unique within the message; its ``name`` restored where `tool_names` says it was shortened,
  `UNNAMED_TOOL` when blank (`ccrelay_translate.naming`).
- ``stop_reason``: stop -> end_turn (stop_sequence when vLLM/SGLang name the matched string),
  length -> max_tokens, tool_calls / function_call -> tool_use, content_filter -> refusal.
- ``usage``: see `ccrelay_translate.usage` (cache counts only when the server reports them);
  missing counts are 0.
- finish_reason ``length`` with nothing at all (a reasoning model spending a ``max_tokens: 1``
  probe on reasoning) is ``content: []`` with ``stop_reason: "max_tokens"``, what Anthropic
  itself returns when the one token sampled shows no text.

A body that is not a chat completion (no choices, wrong types) raises `MalformedReply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccrelay_translate._common import (
    THINKING_SIGNATURE,
    log_repair,
    matched_stop_sequence,
    new_message_id,
    new_tool_use_id,
    reasoning_text,
    stop_reason_for,
    tool_input,
)
from ccrelay_translate.errors import MalformedReply, brief, clipped
from ccrelay_translate.naming import anthropic_tool_id, restore_tool_name
from ccrelay_translate.usage import anthropic_usage


def openai_to_anthropic_response(
    response: dict[str, Any],
    *,
    model: str,
    backend: str = "upstream",
    thinking_display: str = "none",
    tool_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Anthropic message for a non-streamed chat completion; ``backend`` names errors,
    ``tool_names`` maps names shortened for the upstream back (`naming.tool_name_map`)."""
    if not isinstance(response, dict):
        raise MalformedReply(backend, "the chat completion is not a JSON object")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        error = response.get("error")
        detail = f": {clipped(error.get('message'))}" if isinstance(error, dict) else ""
        raise MalformedReply(backend, f"the chat completion has no choices{detail}")
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise MalformedReply(backend, "choices[0] of the chat completion has no message object")
    message = choice["message"]

    content: list[dict[str, Any]] = []
    reasoning = reasoning_text(message)
    if reasoning and thinking_display != "none":
        shown = reasoning if thinking_display == "summarized" else ""
        content.append({"type": "thinking", "thinking": shown, "signature": THINKING_SIGNATURE})
    text = _text(message.get("content"), backend)
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal
    if text:
        content.append({"type": "text", "text": text})

    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    if not isinstance(calls, list):
        raise MalformedReply(backend, "message.tool_calls of the chat completion is not a list")
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"function": legacy}]
    used: set[str] = set()
    for k, call in enumerate(calls):
        content.append(_tool_use(call, k, backend, tool_names, used))

    stop_reason, stop_sequence = stop_reason_for(
        choice.get("finish_reason"),
        has_tool_calls=bool(calls),
        stop_sequence=matched_stop_sequence(choice),
    )
    usage = {
        "input_tokens": 0,
        "output_tokens": 0,
        **anthropic_usage(response.get("usage"), backend),
    }
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _text(content: object, backend: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # a few servers answer with content parts
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    raise MalformedReply(backend, "message.content of the chat completion is not text")


def _tool_use(
    call: object,
    k: int,
    backend: str,
    tool_names: Mapping[str, str] | None,
    used: set[str],
) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise MalformedReply(backend, f"tool_calls[{k}] of the chat completion has no function")
    raw_name = function.get("name")
    name = restore_tool_name(raw_name if isinstance(raw_name, str) else "", tool_names)
    call_id = call.get("id") if isinstance(call, dict) else None
    tool_id = anthropic_tool_id(call_id) if isinstance(call_id, str) and call_id else ""
    if not tool_id or tool_id in used:
        tool_id = new_tool_use_id()
    used.add(tool_id)
    arguments = function.get("arguments")
    value, repaired = tool_input(arguments)
    if repaired:
        log_repair(backend, brief(name), arguments)
    return {"type": "tool_use", "id": tool_id, "name": name, "input": value}
