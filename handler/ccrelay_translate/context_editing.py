"""Anthropic's context editing (``context_management.edits``), done by ccrelay for the backends
that are not Anthropic.

Anthropic applies the edits before the prompt reaches the model and reports them in
``context_management.applied_edits``; Claude Code keeps the whole history and sends it every
time. No OpenAI-style upstream takes the field, so `apply_context_management` edits a copy of
the request as Anthropic documents (https://platform.claude.com/docs/en/build-with-claude/
context-editing; shapes from the anthropic SDK, ``anthropic/types/beta/
beta_clear_tool_uses_20250919_edit_param.py``, ``beta_clear_thinking_20251015_edit_param.py``,
``beta_context_management_response.py``). Edits run in the order given, each on what the one
before left. A list Anthropic refuses is refused (`InvalidRequest`, naming the field:
``clear_thinking_20251015`` not first, a field of the wrong shape, ``thinking_turns`` under 1);
an edit type not known here (``compact_20260112``) is passed over with a log line.

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

Cost: nothing is copied until something is cleared, then only what changes; ``count_tokens``
runs for a ``clear_tool_uses`` edit (its ``input_tokens`` trigger; again when it clears) and
after a ``clear_thinking`` edit that clears; with `estimate_tokens`, not for a trigger that
`tokens_ceiling` (half the cost) shows out of reach. Claude Code's own edit (``keep: "all"``)
costs a dict copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccrelay_translate.errors import InvalidRequest, brief
from ccrelay_translate.tokens import estimate_tokens, tokens_ceiling

__all__ = [
    "CLEARED_TOOL_RESULT",
    "CLEAR_THINKING",
    "CLEAR_TOOL_USES",
    "CountTokens",
    "apply_context_management",
]

log = logging.getLogger("ccrelay.translate")

CLEAR_THINKING = "clear_thinking_20251015"
CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEARED_TOOL_RESULT = "[Old tool result content cleared]"
"""What a cleared ``tool_result`` holds (Claude Code's own placeholder; see the module)."""

DEFAULT_TRIGGER_TOKENS = 100_000
DEFAULT_KEEP_TOOL_USES = 3
DEFAULT_KEEP_THINKING_TURNS = 1

CountTokens = Callable[[dict[str, Any]], int]
"""The caller's input-token estimate of a whole request (`estimate_tokens` by default)."""

_THINKING = frozenset({"thinking", "redacted_thinking"})
_PATH = "context_management"


@dataclass(frozen=True, slots=True)
class _ClearThinking:
    keep: int | None  # None: every turn keeps its thinking


@dataclass(frozen=True, slots=True)
class _ClearToolUses:
    trigger_type: str
    trigger: int
    keep: int
    clear_at_least: int
    exclude: frozenset[str]
    clear_inputs: bool | frozenset[str]


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
    edits = _parse(request["context_management"])
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
            if isinstance(edit, _ClearThinking)
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


def _clear_thinking(prompt: _Prompt, edit: _ClearThinking) -> dict[str, Any] | None:
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


def _clear_tool_uses(prompt: _Prompt, edit: _ClearToolUses) -> dict[str, Any] | None:
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
    cleared_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        blocks: list[Any] | None = None
        for j, block in enumerate(content):
            if not (isinstance(block, dict) and block.get("type") == "tool_result"):
                continue
            use_id = block.get("tool_use_id")
            if use_id in targets and _worth_clearing(block.get("content")):
                if blocks is None:
                    blocks = list(content)
                blocks[j] = {**block, "content": _placeholder(block["content"])}
                cleared_ids.add(use_id)
        if blocks is not None:
            edited[i] = {**message, "content": blocks}
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
    cleared: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        blocks: list[Any] | None = None
        for j, block in enumerate(content):
            if not (isinstance(block, dict) and block.get("type") == "tool_use"):
                continue
            use_id = block.get("id")
            if use_id not in targets or (names is not None and targets[use_id] not in names):
                continue
            if block.get("input") == {}:
                continue
            if blocks is None:
                blocks = list(content)
            blocks[j] = {**block, "input": {}}
            cleared.add(use_id)
        if blocks is not None:
            messages[i] = {**message, "content": blocks}
    return cleared


# -- the edit list, checked as Anthropic checks it --------------------------------------------


def _parse(value: object) -> list[_ClearThinking | _ClearToolUses]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{_PATH}: must be an object with an edits list")
    edits = value.get("edits")
    if edits is None:
        return []
    if not isinstance(edits, list):
        raise InvalidRequest(f"{_PATH}.edits: must be a list of edits")
    parsed: list[_ClearThinking | _ClearToolUses] = []
    for i, edit in enumerate(edits):
        path = f"{_PATH}.edits[{i}]"
        if not isinstance(edit, dict):
            raise InvalidRequest(f"{path}: an edit must be an object")
        kind = edit.get("type")
        if kind == CLEAR_THINKING:
            if i:
                raise InvalidRequest(f"{path}: {CLEAR_THINKING} must be the first edit")
            parsed.append(_ClearThinking(_thinking_keep(edit.get("keep"), f"{path}.keep")))
        elif kind == CLEAR_TOOL_USES:
            parsed.append(_tool_uses_edit(edit, path))
        elif isinstance(kind, str) and kind:
            log.info("%s.type: %s is not emulated; passed over", path, brief(kind))
        else:
            raise InvalidRequest(f'{path}.type: an edit needs a "type" string, not {brief(kind)}')
    return parsed


def _thinking_keep(keep: object, path: str) -> int | None:
    if keep is None:
        return DEFAULT_KEEP_THINKING_TURNS
    if keep == "all" or (isinstance(keep, dict) and keep.get("type") == "all"):
        return None
    if isinstance(keep, dict) and keep.get("type") == "thinking_turns":
        return _whole(keep.get("value"), f"{path}.value", minimum=1)
    raise InvalidRequest(
        f'{path}: must be "all", {{"type": "all"}} or {{"type": "thinking_turns", "value": N}}'
    )


def _tool_uses_edit(edit: dict[str, Any], path: str) -> _ClearToolUses:
    trigger_type, trigger = "input_tokens", DEFAULT_TRIGGER_TOKENS
    if edit.get("trigger") is not None:
        trigger_type, trigger = _counted(
            edit["trigger"], f"{path}.trigger", ("input_tokens", "tool_uses")
        )
    keep = DEFAULT_KEEP_TOOL_USES
    if edit.get("keep") is not None:
        keep = _counted(edit["keep"], f"{path}.keep", ("tool_uses",))[1]
    at_least = 0
    if edit.get("clear_at_least") is not None:
        at_least = _counted(edit["clear_at_least"], f"{path}.clear_at_least", ("input_tokens",))[1]
    exclude = _names(edit.get("exclude_tools"), f"{path}.exclude_tools")
    inputs = edit.get("clear_tool_inputs")
    clear_inputs: bool | frozenset[str]
    if inputs is None or isinstance(inputs, bool):
        clear_inputs = bool(inputs)
    else:
        clear_inputs = _names(inputs, f"{path}.clear_tool_inputs", or_bool=True)
    return _ClearToolUses(trigger_type, trigger, keep, at_least, exclude, clear_inputs)


def _counted(value: object, path: str, kinds: tuple[str, ...]) -> tuple[str, int]:
    """``{type, value}`` -> (type, value)."""
    shape = " or ".join(f'{{"type": "{kind}", "value": N}}' for kind in kinds)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path}: must be {shape}")
    kind = value.get("type")
    if kind not in kinds:
        raise InvalidRequest(f"{path}.type: must be {shape}, not type {brief(kind)}")
    return kind, _whole(value.get("value"), f"{path}.value", minimum=0)


def _whole(value: object, path: str, *, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise InvalidRequest(
            f"{path}: must be a whole number of {minimum} or more, not {brief(value)}"
        )
    return value


def _names(value: object, path: str, *, or_bool: bool = False) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return frozenset(value)
    kind = "true, false or a list of tool names" if or_bool else "a list of tool names"
    raise InvalidRequest(f"{path}: must be {kind}")
