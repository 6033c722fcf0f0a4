"""Pieces shared by the response and stream translators: ids, tool arguments, stop reasons, usage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

RAW_ARGUMENTS_KEY = "_raw_arguments"
"""Where unparseable tool-call arguments go, verbatim (see `parse_tool_arguments`)."""

# OpenAI finish_reason -> Anthropic stop_reason. "content_filter" becomes "refusal", the stop
# reason Anthropic gives when its own classifiers end a turn. Anything unknown ("eos", "abort",
# a provider's own word) is treated as "stop".
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


THINKING_SIGNATURE = "ccrelay-unsigned"
"""The ``signature`` of a thinking block ccrelay made from another model's reasoning. Anthropic
would refuse it, so the Anthropic backend drops such blocks from a history it passes on."""


def new_message_id() -> str:
    """A fresh ``msg_`` id for every reply. Never the upstream's: Ollama's ids are
    ``chatcmpl-<0..998>`` and cached replays repeat theirs, and Claude Code merges assistant
    turns that share an id (a three-step tool run would reach the upstream as one turn)."""
    return f"msg_{uuid.uuid4().hex}"


def new_tool_use_id() -> str:
    return f"toolu_{uuid.uuid4().hex}"


def reasoning_text(source: Mapping[str, Any]) -> str:
    """The reasoning in a message or a stream delta: ``reasoning`` (Cerebras, Ollama, vLLM
    >= 0.9) or ``reasoning_content`` (vLLM, SGLang, DeepSeek)."""
    for key in ("reasoning", "reasoning_content"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def compact_json(value: Any) -> str:
    """Compact UTF-8 JSON; orjson on the hot path, the stdlib for what orjson refuses (huge ints)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_tool_arguments(arguments: object) -> dict[str, Any]:
    """A tool call's ``arguments`` (a JSON string) as the ``input`` object Anthropic requires.

    Never loses what the model wrote: empty arguments are ``{}``; an object is taken as is
    (some servers send one instead of a string); a JSON string holding an object's JSON
    (double-encoded, a known small-model habit) is decoded twice; anything else (malformed
    JSON, a JSON array or number) becomes ``{"_raw_arguments": "<the text>"}``. The client's
    schema check then rejects that input and the model sees its mistake and retries, instead
    of the whole turn failing here.
    """
    if arguments is None:
        return {}
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str):
        return {RAW_ARGUMENTS_KEY: compact_json(arguments)}
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {RAW_ARGUMENTS_KEY: arguments}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {RAW_ARGUMENTS_KEY: arguments}
    if isinstance(value, dict):
        return value
    return {RAW_ARGUMENTS_KEY: arguments}


def is_complete_json(text: str) -> bool:
    """Whether ``text`` already is a whole JSON value (so a tool call's arguments are done)."""
    if not text.strip():
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def matched_stop_sequence(choice: Mapping[str, Any]) -> str | None:
    """The stop string that ended a choice, where the server says so.

    OpenAI does not report it; vLLM puts it in ``choice.stop_reason`` and SGLang in
    ``choice.matched_stop`` (both use an int there for a stop *token*, which is no sequence).
    """
    for key in ("stop_reason", "matched_stop"):
        value = choice.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def stop_reason_for(
    finish_reason: object, *, has_tool_calls: bool, stop_sequence: str | None = None
) -> tuple[str, str | None]:
    """(Anthropic stop_reason, stop_sequence) for an OpenAI finish_reason.

    Tool calls win over "stop" (Ollama and some vLLM parsers finish tool turns with "stop"),
    but not over "length" (arguments cut short) or "content_filter". A "tool_calls" finish
    with no tool call in the reply is an ordinary end of turn. No finish_reason at all (a
    truncated stream) is "tool_use" when tool calls were seen, else "end_turn".
    """
    reason = _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else ""
    if reason in ("max_tokens", "refusal"):
        return reason, None
    if has_tool_calls:
        return "tool_use", None
    if finish_reason == "stop" and stop_sequence is not None:
        return "stop_sequence", stop_sequence
    return "end_turn", None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)


def anthropic_usage(usage: object) -> dict[str, int]:
    """Anthropic usage counts from an OpenAI ``usage`` object: only the counts it reports.

    OpenAI's ``prompt_tokens`` includes the cached part; Anthropic's ``input_tokens`` does not
    (``input + cache_creation + cache_read`` is the whole prompt), so when the server reports
    ``prompt_tokens_details.cached_tokens`` they are moved to ``cache_read_input_tokens``.
    Nothing maps to ``cache_creation_input_tokens``: OpenAI-style caches are automatic.
    """
    if not isinstance(usage, Mapping):
        return {}
    out: dict[str, int] = {}
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    if prompt is not None:
        out["input_tokens"] = max(prompt - (cached or 0), 0)
    if completion is not None:
        out["output_tokens"] = completion
    if cached is not None and prompt is not None:
        out["cache_read_input_tokens"] = cached
    return out
