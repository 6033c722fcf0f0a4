"""Pieces shared by the response and stream translators: ids, tool arguments, stop reasons, usage."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ccrelay_translate.limits import MAX_DEPTH, nests_deeper_than

log = logging.getLogger("ccrelay.translate")

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
    """A tool call's ``arguments`` (a JSON string) as the ``input`` object Anthropic requires
    (`tool_input` without its verdict)."""
    return tool_input(arguments)[0]


def tool_input(arguments: object) -> tuple[dict[str, Any], bool]:
    """(the ``input`` object for a tool call's ``arguments``, whether they had to be repaired).

    Never loses what the model wrote: empty arguments are ``{}``; an object is taken as is
    (some servers send one instead of a string); a JSON string holding an object's JSON
    (double-encoded, a known small-model habit) is decoded twice; anything else (malformed
    JSON, a JSON array or number, an object nested deeper than `MAX_DEPTH`) becomes
    ``{"_raw_arguments": "<the text>"}`` and counts as repaired. The client's schema check then
    rejects that input and the model sees its mistake and retries, instead of the whole turn
    failing here. JSON is read with orjson, so every value read can be written again (no
    integer beyond 64 bits, no lone surrogate, no NaN).
    """
    if arguments is None:
        return {}, False
    if isinstance(arguments, dict):
        if not nests_deeper_than(arguments, MAX_DEPTH):
            return arguments, False
        return {RAW_ARGUMENTS_KEY: _text_of_deep(arguments)}, True
    if not isinstance(arguments, str):
        return {RAW_ARGUMENTS_KEY: _text_of_deep(arguments)}, True
    if not arguments.strip():
        return {}, False
    value = _loads(arguments)
    if isinstance(value, str):
        value = _loads(value)
    if isinstance(value, dict) and not nests_deeper_than(value, MAX_DEPTH):
        return value, False
    return {RAW_ARGUMENTS_KEY: arguments}, True


_UNREADABLE = object()


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNREADABLE


def _text_of_deep(value: object) -> str:
    try:
        return compact_json(value)
    except (TypeError, ValueError, RecursionError):
        return "[arguments nested too deep to keep]"


def log_repair(backend: str, name: str, arguments: object) -> None:
    """One line per repaired tool call; never the arguments themselves (they may hold secrets)."""
    size = len(arguments) if isinstance(arguments, str) else 0
    log.warning(
        "%s: the arguments of a %s tool call were not a JSON object (%d characters); "
        "sent as %s for the model to retry",
        backend,
        name,
        size,
        RAW_ARGUMENTS_KEY,
    )


def is_complete_json(text: str) -> bool:
    """Whether ``text`` already is a whole JSON value (so a tool call's arguments are done)."""
    if not text.strip():
        return False
    return _loads(text) is not _UNREADABLE


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
