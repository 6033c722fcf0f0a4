"""An OpenAI chat completion -> an Anthropic Messages response.

- ``id``: a fresh ``msg_`` id, never the upstream's (`new_message_id`); ``model``: the one
  given (what the caller asked for).
- ``content``: a leading ``thinking`` block for the reasoning (``reasoning`` /
  ``reasoning_content``), as Anthropic would show it for the request's ``thinking_display``:
  ``summarized`` its text, ``omitted`` an empty text, ``none`` (thinking not asked for) no
  block; reasoning is never mixed into the answer text. Then one text block when the message
  has text (a ``refusal`` counts as text when there is no content), then one ``tool_use``
  block per tool call (and for a legacy ``function_call``), ``input`` parsed from
  ``arguments`` by `parse_tool_arguments` (malformed JSON is kept under ``_raw_arguments``).
- ``stop_reason``: stop -> end_turn (stop_sequence when vLLM/SGLang name the matched string),
  length -> max_tokens, tool_calls / function_call -> tool_use, content_filter -> refusal.
- ``usage``: see `anthropic_usage` (``cache_read_input_tokens`` only when the server reports
  cached tokens); missing counts are 0.

A body that is not a chat completion (no choices, wrong types) raises `MalformedReply`.
"""

from __future__ import annotations

from typing import Any

from ccrelay_translate._common import (
    THINKING_SIGNATURE,
    anthropic_usage,
    matched_stop_sequence,
    new_message_id,
    new_tool_use_id,
    parse_tool_arguments,
    reasoning_text,
    stop_reason_for,
)
from ccrelay_translate.errors import MalformedReply


def openai_to_anthropic_response(
    response: dict[str, Any],
    *,
    model: str,
    backend: str = "upstream",
    thinking_display: str = "none",
) -> dict[str, Any]:
    """The Anthropic message for a non-streamed chat completion; ``backend`` names errors."""
    if not isinstance(response, dict):
        raise MalformedReply(backend, "the chat completion is not a JSON object")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        error = response.get("error")
        detail = f": {error.get('message')}" if isinstance(error, dict) else ""
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
    for k, call in enumerate(calls):
        content.append(_tool_use(call, k, backend))

    stop_reason, stop_sequence = stop_reason_for(
        choice.get("finish_reason"),
        has_tool_calls=bool(calls),
        stop_sequence=matched_stop_sequence(choice),
    )
    usage = {"input_tokens": 0, "output_tokens": 0, **anthropic_usage(response.get("usage"))}
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


def _tool_use(call: object, k: int, backend: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise MalformedReply(backend, f"tool_calls[{k}] of the chat completion has no function")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedReply(backend, f"tool_calls[{k}] of the chat completion has no name")
    call_id = call.get("id") if isinstance(call, dict) else None
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else new_tool_use_id(),
        "name": name,
        "input": parse_tool_arguments(function.get("arguments")),
    }
