"""Tool-call ids and tool names that one side's rules allow and the other's do not.

Every rewrite here is a pure function of the value (or of the request that carries the
originals), so nothing needs remembering between requests: the gateway may restart and a
session may fail over to another backend or gateway mid-conversation.

**Ids.** Anthropic requires ``tool_use.id`` to match ``^[a-zA-Z0-9_-]+$`` and refuses the whole
history otherwise; upstreams are freer (Kimi K2 on vLLM: ``functions.Read:0``, whose model also
expects that exact id back in its history). An id that breaks the rule goes to Claude Code as
``ccrid_`` + its UTF-8 in unpadded base64url (an alphabet inside the rule), and comes back to the
upstream decoded (`upstream_tool_id`). An id that already follows the rule is never touched,
either way: only an id that decodes to one that breaks the rule, and encodes back to itself, is
taken for one of ours.

**Names.** Anthropic allows ``^[a-zA-Z0-9_-]{1,128}$``, OpenAI-style upstreams 64 characters
(MCP tools, ``mcp__<server>__<tool>``, often run longer). A longer name goes upstream as its
first 55 characters, ``_`` and 8 hex digits of its SHA-256 (LiteLLM's scheme,
``litellm/llms/anthropic/experimental_pass_through/adapters/transformation.py``), the same in
``tools``, ``tool_choice`` and the history's ``tool_use`` blocks; `tool_name_map` gives the
replies' translators the way back. A blank name (a streamed call whose name never came, or one
already in a history) becomes `UNNAMED_TOOL` in both directions: Claude Code answers it with a
"no such tool" error the model can recover from, where a blank name would fail every later turn.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "OPENAI_NAME_CHARS",
    "UNNAMED_TOOL",
    "anthropic_tool_id",
    "openai_tool_name",
    "restore_tool_name",
    "tool_name_map",
    "upstream_tool_id",
]

UNNAMED_TOOL = "ccrelay_unnamed_tool"
"""The name of a tool call that came without one (no tool has it, so Claude Code answers
"no such tool" and the model tries again)."""

OPENAI_NAME_CHARS = 64
_KEPT_CHARS = 55

_ID_RULE = re.compile(r"[A-Za-z0-9_-]+")
_ID_PREFIX = "ccrid_"


def anthropic_tool_id(upstream_id: str) -> str:
    """The id Claude Code gets for an upstream tool call id: itself when Anthropic's rule
    allows it, else its reversible encoding."""
    if _ID_RULE.fullmatch(upstream_id):
        return upstream_id
    encoded = base64.urlsafe_b64encode(upstream_id.encode("utf-8", "surrogatepass"))
    return _ID_PREFIX + encoded.decode("ascii").rstrip("=")


def upstream_tool_id(anthropic_id: str) -> str:
    """The id the upstream gave, for an id in Claude Code's history (see `anthropic_tool_id`)."""
    if not anthropic_id.startswith(_ID_PREFIX):
        return anthropic_id
    encoded = anthropic_id[len(_ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        original = raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return anthropic_id
    if not original or _ID_RULE.fullmatch(original) or anthropic_tool_id(original) != anthropic_id:
        return anthropic_id  # never one of ours: an upstream's own id that looks alike
    return original


def openai_tool_name(name: str) -> str:
    """The name an OpenAI-style upstream gets for an Anthropic tool name."""
    if not name.strip():
        return UNNAMED_TOOL
    if len(name) <= OPENAI_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[:_KEPT_CHARS]}_{digest[:8]}"


def tool_name_map(request: Mapping[str, Any]) -> dict[str, str]:
    """Shortened name -> original, for every tool of `request` whose name `openai_tool_name`
    shortens (empty for Claude Code's own tools). Pass it to the reply's translator."""
    tools = request.get("tools")
    names: dict[str, str] = {}
    for tool in tools if isinstance(tools, list) else ():
        name = tool.get("name") if isinstance(tool, dict) else None
        if isinstance(name, str) and len(name) > OPENAI_NAME_CHARS:
            names[openai_tool_name(name)] = name
    return names


def restore_tool_name(name: str, names: Mapping[str, str] | None) -> str:
    """The Anthropic name for a name in a reply: restored when shortened, `UNNAMED_TOOL` when
    blank."""
    if not name.strip():
        return UNNAMED_TOOL
    return names.get(name, name) if names else name
