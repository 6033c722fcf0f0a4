"""The context edits the gateway adds for a backend with a small window.

Claude Code 2.1.332 asks only for ``clear_thinking_20251015`` (``keep: all``); its
``clear_tool_uses_20250919`` edit comes only after a long idle spell, behind server flags. So on
a small window its tool results fill the prompt and force full compactions, where Anthropic
would have cleared old ones server-side. `with_tool_clearing` adds that edit, from the backend's
`ClearToolUsesPolicy` (ccrelay_config.models, which says why in full), to a request for a
non-Anthropic backend; whoever applies ``context_management`` next (`apply_context_management`
in the gateway, or the ccrelay worker for a ``runpod`` backend) does the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccrelay_translate.context_editing import CLEAR_TOOL_USES, apply_context_management
from ccrelay_translate.tokens import estimate_tokens

if TYPE_CHECKING:
    from ccrelay.backends.base import Backend

__all__ = ["tokens_after_edits", "tool_clearing_edit", "with_tool_clearing"]


def tool_clearing_edit(backend: Backend[Any]) -> dict[str, Any] | None:
    """The ``clear_tool_uses_20250919`` edit for `backend`, or None: its policy is off, its
    window is unknown (nothing to take a fraction of) or larger than the policy's
    ``max_window_tokens``."""
    policy = backend.settings.context_editing.clear_tool_uses
    window = backend.context_window
    limit = backend.prompt_limit()
    if policy is None or window is None or limit is None or window > policy.max_window_tokens:
        return None
    return {
        "type": CLEAR_TOOL_USES,
        "trigger": {"type": "input_tokens", "value": max(1, int(limit * policy.at_fraction))},
        "keep": {"type": "tool_uses", "value": policy.keep_tool_uses},
        "clear_at_least": {"type": "input_tokens", "value": policy.clear_at_least_tokens},
    }


def with_tool_clearing(request: dict[str, Any], backend: Backend[Any]) -> dict[str, Any]:
    """`request` with the backend's tool-clearing edit after the edits it asked for; `request`
    itself when there is none to add, when it carries a ``clear_tool_uses_20250919`` edit of
    its own (the client's wins), or when its ``context_management`` is malformed (left for
    `apply_context_management` to refuse in its own words). `request` is never changed."""
    current = request.get("context_management")
    if current is not None and not isinstance(current, dict):
        return request
    edits = (current or {}).get("edits") or []
    if not isinstance(edits, list):
        return request
    if any(isinstance(edit, dict) and edit.get("type") == CLEAR_TOOL_USES for edit in edits):
        return request
    edit = tool_clearing_edit(backend)
    if edit is None:
        return request
    return {**request, "context_management": {**(current or {}), "edits": [*edits, edit]}}


def tokens_after_edits(backend: Backend[Any], request: dict[str, Any], tokens: int) -> int:
    """The estimate of `request` (`tokens` before any edit) once the edits a non-Anthropic
    `backend` applies are applied: its own ``context_management`` and the backend's tool
    clearing. What fits a backend's window is the prompt its model reads, so this, not
    `tokens`, is what to hold against `Backend.prompt_limit` (worth computing only when
    `tokens` is over it). An ``anthropic`` backend: `tokens` (Anthropic edits server-side).
    Raises `ccrelay_translate.errors.InvalidRequest` for a malformed ``context_management``."""
    if backend.type_name == "anthropic":
        return tokens
    _, applied = apply_context_management(
        with_tool_clearing(request, backend), count_tokens=estimate_tokens, input_tokens=tokens
    )
    cleared = sum(int(edit.get("cleared_input_tokens") or 0) for edit in applied or [])
    return tokens - cleared
