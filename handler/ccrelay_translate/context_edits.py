"""The ``context_management`` edit list, checked as Anthropic checks it: `parse_edits`.

`ccrelay_translate.context_editing` applies what this returns. A list Anthropic refuses is
refused (`InvalidRequest`, naming the field): ``clear_thinking_20251015`` not first, a field of
the wrong shape, ``thinking_turns`` under 1. An edit type not known here (``compact_20260112``)
is passed over with a log line. Absent or null fields take Anthropic's defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ccrelay_translate.errors import InvalidRequest, brief

__all__ = [
    "CLEAR_THINKING",
    "CLEAR_TOOL_USES",
    "PATH",
    "ClearThinking",
    "ClearToolUses",
    "parse_edits",
]

log = logging.getLogger("ccrelay.translate")

CLEAR_THINKING = "clear_thinking_20251015"
CLEAR_TOOL_USES = "clear_tool_uses_20250919"
PATH = "context_management"

DEFAULT_TRIGGER_TOKENS = 100_000
DEFAULT_KEEP_TOOL_USES = 3
DEFAULT_KEEP_THINKING_TURNS = 1


@dataclass(frozen=True, slots=True)
class ClearThinking:
    keep: int | None  # None: every turn keeps its thinking


@dataclass(frozen=True, slots=True)
class ClearToolUses:
    trigger_type: str
    trigger: int
    keep: int
    clear_at_least: int
    exclude: frozenset[str]
    clear_inputs: bool | frozenset[str]


def parse_edits(value: object) -> list[ClearThinking | ClearToolUses]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{PATH}: must be an object with an edits list")
    edits = value.get("edits")
    if edits is None:
        return []
    if not isinstance(edits, list):
        raise InvalidRequest(f"{PATH}.edits: must be a list of edits")
    parsed: list[ClearThinking | ClearToolUses] = []
    for i, edit in enumerate(edits):
        path = f"{PATH}.edits[{i}]"
        if not isinstance(edit, dict):
            raise InvalidRequest(f"{path}: an edit must be an object")
        kind = edit.get("type")
        if kind == CLEAR_THINKING:
            if i:
                raise InvalidRequest(f"{path}: {CLEAR_THINKING} must be the first edit")
            parsed.append(ClearThinking(_thinking_keep(edit.get("keep"), f"{path}.keep")))
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


def _tool_uses_edit(edit: dict[str, Any], path: str) -> ClearToolUses:
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
    return ClearToolUses(trigger_type, trigger, keep, at_least, exclude, clear_inputs)


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
