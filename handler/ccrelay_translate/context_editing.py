"""Anthropic's context editing (``context_management.edits``), done by ccrelay for the backends
that are not Anthropic.

Anthropic applies the edits before the prompt reaches the model and reports them in
``context_management.applied_edits``; Claude Code keeps the whole history and sends it every
time. No OpenAI-style upstream takes the field, so `apply_context_management` edits a copy of
the request as Anthropic documents (https://platform.claude.com/docs/en/build-with-claude/
context-editing; shapes from the anthropic SDK, ``anthropic/types/beta/
beta_clear_tool_uses_20250919_edit_param.py``, ``beta_clear_thinking_20251015_edit_param.py``,
``beta_context_management_response.py``). Edits run in the order given, each on what the one
before left. The list is checked as Anthropic checks it (`ccrelay_translate.context_edits`):
one Anthropic refuses is refused, naming the field.

``clear_thinking_20251015``, ``keep``: ``"all"`` or ``{type: all}`` clear nothing;
``{type: thinking_turns, value: N}`` (absent: 1, the default it was documented with; the newer
default depends on which Claude model runs, and none does here) keeps the thinking and
redacted_thinking blocks of the last N assistant turns, whether they hold any or not. A turn is
what Anthropic's thinking docs call one: a tool loop is one turn, from a user message without a
``tool_result`` to the next. The turn in progress is always kept, so the thinking of a tool loop
(which Anthropic wants back whole) is never split. An assistant message left empty is dropped
(consecutive user messages are valid). ``cleared_thinking_turns`` counts the assistant messages
that lost thinking: Anthropic reported 2 for ``keep`` 1 on [user, assistant(thinking, tool_use),
tool_result, assistant(thinking, text), user, assistant(tool_use), tool_result] (a public probe
of claude-opus-5-5, 2026-09).

``clear_tool_uses_20250919`` (a field absent or null takes its default):

- ``trigger``: met when the prompt's tokens (the caller's ``count_tokens``) exceed ``{type:
  input_tokens, value}`` (default 100000), or the ``tool_use`` blocks ``{type: tool_uses}``.
- ``keep`` (``tool_uses``, default 3): the most recent N tool uses, counted over all of them,
  keep their results; older ones are cleared. ``exclude_tools``: never cleared.
- ``clear_tool_inputs``: true also sets a cleared ``tool_use``'s ``input`` to ``{}``; a list,
  only for those tools; false (default) leaves inputs.
- ``clear_at_least`` (``input_tokens``): the edit is skipped when it would clear fewer.
- A cleared ``tool_result`` keeps its block (``tool_use_id``, ``is_error``, ``cache_control``)
  and its shape: its content becomes `CLEARED_TOOL_RESULT`, as a string or as one text block
  carrying the list's last ``cache_control``, so every ``tool_use`` keeps its result and every
  cache breakpoint stays. A result no longer than the placeholder is left (clearing would grow
  the prompt; Anthropic reported nothing for ``keep`` 1, trigger 100, on the session above,
  whose results are "41" and "7"), and so is a ``tool_use`` with no result yet.
- The placeholder is Claude Code's own, ``[Old tool result content cleared]``: Claude Code
  writes it when it clears results itself, and its compaction prompt says what the line means.
  Anthropic's text is not documented (LiteLLM's polyfill: ``[Cleared by context management]``).

An applied edit is reported as Anthropic does: ``{type, cleared_thinking_turns |
cleared_tool_uses, cleared_input_tokens}``, the tokens being the caller's estimate before the
edit less after it. An edit that clears nothing is not reported (the list may be empty).

Cost: only what changes is copied; ``count_tokens`` runs only where a trigger or a clearing
needs it (docs/translation.md, "Speed").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ccrelay_translate.context_edits import (
    CLEAR_THINKING,
    CLEAR_TOOL_USES,
    ClearThinking,
    ClearToolUses,
    parse_edits,
)
from ccrelay_translate.tokens import estimate_tokens, tokens_ceiling

__all__ = [
    "CLEARED_TOOL_RESULT",
    "CLEAR_THINKING",
    "CLEAR_TOOL_USES",
    "CountTokens",
    "apply_context_management",
]

log = logging.getLogger("ccrelay.translate")

CLEARED_TOOL_RESULT = "[Old tool result content cleared]"
"""What a cleared ``tool_result`` holds (Claude Code's own placeholder; see the module)."""


CountTokens = Callable[[dict[str, Any]], int]
"""The caller's input-token estimate of a whole request (`estimate_tokens` by default)."""

_THINKING = frozenset({"thinking", "redacted_thinking"})


def apply_context_management(
    request: dict[str, Any], *, count_tokens: CountTokens, input_tokens: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(the request to send upstream, the ``applied_edits`` to report).

    Without ``context_management`` the request comes back as it is, with None: the reply then
    carries no ``context_management``. With it, a copy without the field comes back (edited
    where an edit applied; `request` is never changed) and the list, possibly empty.
    `input_tokens`: ``count_tokens(request)`` when the caller has it already (the router does),
    which spares the one count a trigger that is not reached would cost.
    """
    if "context_management" not in request:
        return request, None
    edits = parse_edits(request["context_management"])
    out = {key: value for key, value in request.items() if key != "context_management"}
    if not edits or not isinstance(out.get("messages"), list):
        return out, []
    prompt = _Prompt(out, count_tokens, input_tokens)
    if count_tokens is estimate_tokens:
        prompt.ceiling = tokens_ceiling
    applied: list[dict[str, Any]] = []
    for edit in edits:
        done = (
            _clear_thinking(prompt, edit)
            if isinstance(edit, ClearThinking)
            else _clear_tool_uses(prompt, edit)
        )
        if done is not None:
            applied.append(done)
    return prompt.request, applied


class _Prompt:
    """The request as the edits so far left it, and its token count once known."""

    def __init__(
        self, request: dict[str, Any], count_tokens: CountTokens, tokens: int | None
    ) -> None:
        self.request = request
        self._count = count_tokens
        self._tokens = tokens
        self.ceiling: CountTokens | None = None

    @property
    def messages(self) -> list[Any]:
        messages: list[Any] = self.request["messages"]
        return messages

    def tokens(self) -> int:
        if self._tokens is None:
            self._tokens = self._count(self.request)
        return self._tokens

    def exceeds(self, limit: int) -> bool:
        """More than `limit` tokens? Not counted when the ceiling (a bound of it) says no."""
        if self._tokens is None and self.ceiling and self.ceiling(self.request) <= limit:
            return False
        return self.tokens() > limit

    def edited(self, messages: list[Any], *, at_least: int = 0) -> int | None:
        """Take `messages` and return the tokens that cleared, unless under `at_least`."""
        before = self.tokens()
        request = {**self.request, "messages": messages}
        after = self._count(request)
        cleared = max(0, before - after)
        if cleared < at_least:
            return None
        self.request, self._tokens = request, after
        return cleared


# -- clear_thinking_20251015 ------------------------------------------------------------------


def _clear_thinking(prompt: _Prompt, edit: ClearThinking) -> dict[str, Any] | None:
    if edit.keep is None:
        return None
    messages = prompt.messages
    turns = _assistant_turns(messages)
    first_kept = (max(turns) if turns else 0) - edit.keep + 1
    edited: list[Any] | None = None
    cleared = 0
    for i, turn in enumerate(turns):
        if not 0 < turn < first_kept:
            continue
        message = messages[i]
        content = message.get("content")
        if not isinstance(content, list) or not any(_is_thinking(b) for b in content):
            continue
        kept = [block for block in content if not _is_thinking(block)]
        if edited is None:
            edited = list(messages)
        edited[i] = {**message, "content": kept} if kept else None
        cleared += 1
    if edited is None:
        return None
    tokens = prompt.edited([m for m in edited if m is not None])
    return {
        "type": CLEAR_THINKING,
        "cleared_thinking_turns": cleared,
        "cleared_input_tokens": tokens,
    }


def _assistant_turns(messages: list[Any]) -> list[int]:
    """For each message, the number (from 1) of the assistant turn it belongs to; 0 for others."""
    turns = [0] * len(messages)
    turn, open_turn = 0, False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant":
            if not open_turn:
                turn, open_turn = turn + 1, True
            turns[i] = turn
        elif role == "user" and not _has_tool_result(message.get("content")):
            open_turn = False
    return turns


def _is_thinking(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") in _THINKING


def _has_tool_result(content: object) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


# -- clear_tool_uses_20250919 -----------------------------------------------------------------


def _clear_tool_uses(prompt: _Prompt, edit: ClearToolUses) -> dict[str, Any] | None:
    messages = prompt.messages
    uses = _tool_uses(messages)
    if edit.trigger_type == "tool_uses":
        if len(uses) <= edit.trigger:
            return None
    elif not prompt.exceeds(edit.trigger):
        return None
    older = uses[: max(0, len(uses) - edit.keep)]
    targets = {use_id: name for name, use_id in older if name not in edit.exclude}
    if not targets:
        return None
    edited = list(messages)

    def clear_result(block: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        use_id = block.get("tool_use_id")
        if use_id not in targets or not _worth_clearing(block.get("content")):
            return None
        return {**block, "content": _placeholder(block["content"])}, use_id

    cleared_ids = _rewrite_blocks(messages, edited, "user", "tool_result", clear_result)
    cleared_ids |= _clear_inputs(edited, targets, edit.clear_inputs)
    if not cleared_ids:
        return None
    tokens = prompt.edited(edited, at_least=edit.clear_at_least)
    if tokens is None:
        return None
    return {
        "type": CLEAR_TOOL_USES,
        "cleared_tool_uses": len(cleared_ids),
        "cleared_input_tokens": tokens,
    }


def _tool_uses(messages: list[Any]) -> list[tuple[str, str]]:
    """(name, id) of every ``tool_use`` block, in order."""
    uses = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                use_id, name = block.get("id"), block.get("name")
                if isinstance(use_id, str):
                    uses.append((name if isinstance(name, str) else "", use_id))
    return uses


def _worth_clearing(content: object) -> bool:
    """Whether the placeholder is smaller than `content` (an image or a document always is)."""
    if isinstance(content, str):
        return len(content) > len(CLEARED_TOOL_RESULT)
    if not isinstance(content, list):
        return False
    size = 0
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "text":
            return True
        text = block.get("text")
        size += len(text) if isinstance(text, str) else 0
    return size > len(CLEARED_TOOL_RESULT)


def _placeholder(content: list[Any] | str) -> list[dict[str, Any]] | str:
    if isinstance(content, str):
        return CLEARED_TOOL_RESULT
    block: dict[str, Any] = {"type": "text", "text": CLEARED_TOOL_RESULT}
    marks = [b["cache_control"] for b in content if isinstance(b, dict) and "cache_control" in b]
    if marks:
        block["cache_control"] = marks[-1]
    return [block]


def _clear_inputs(
    messages: list[Any], targets: dict[str, str], which: bool | frozenset[str]
) -> set[str]:
    """Empty the inputs `which` covers among the `targets` (id -> name), in place in the
    (already copied) `messages`; the ids whose input changed."""
    if which is False:
        return set()
    names = None if which is True else which

    def clear_input(block: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        use_id = block.get("id")
        if use_id not in targets or (names is not None and targets[use_id] not in names):
            return None
        if block.get("input") == {}:
            return None
        return {**block, "input": {}}, use_id

    return _rewrite_blocks(messages, messages, "assistant", "tool_use", clear_input)


def _rewrite_blocks(
    source: list[Any],
    into: list[Any],
    role: str,
    block_type: str,
    rewrite: Callable[[dict[str, Any]], tuple[dict[str, Any], str] | None],
) -> set[str]:
    """Each `block_type` block of the `role` messages of `source` that `rewrite` replaces (it
    gives the new block and its tool id, or None to keep it); a message with a replaced block is
    copied once into `into` (the same length as `source`, or `source` itself). The ids."""
    changed: set[str] = set()
    for i, message in enumerate(source):
        if not isinstance(message, dict) or message.get("role") != role:
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        blocks: list[Any] | None = None
        for j, block in enumerate(content):
            if not (isinstance(block, dict) and block.get("type") == block_type):
                continue
            replaced = rewrite(block)
            if replaced is None:
                continue
            if blocks is None:
                blocks = list(content)
            blocks[j], use_id = replaced
            changed.add(use_id)
        if blocks is not None:
            into[i] = {**message, "content": blocks}
    return changed
