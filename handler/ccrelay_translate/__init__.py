"""Anthropic Messages <-> OpenAI chat completions, shared by every OpenAI-speaking backend.

The canonical request inside ccrelay is an Anthropic Messages request (a JSON-decoded dict,
what Claude Code sends). One concept per module:

- `request`:  Anthropic request -> OpenAI chat body (`anthropic_to_openai_request`), with
  `messages` (system, turns, content blocks, tool results) and `tools` (tools, tool_choice);
- `response`: OpenAI chat completion -> Anthropic message (`openai_to_anthropic_response`);
- `stream`:   OpenAI chunks -> Anthropic stream events (`OpenAIStreamTranslator`);
- `events`:   Anthropic events <-> whole Anthropic response (assemble, and replay for cache hits);
- `tokens`:   a cheap input-token estimate (`estimate_tokens`);
- `naming`:   tool ids and names both sides accept (`tool_name_map` for the replies);
- `usage`:    OpenAI usage -> Anthropic's, cache counts included;
- `structured`: ``output_config.format`` -> ``response_format``, strict when it fits;
- `limits`:   the nesting depth every boundary checks on a decoded body (`check_depth`);
- `context_editing`: Anthropic's ``context_management`` edits, done for the other backends
  (`apply_context_management`).

Each module's docstring records what is translated, what is dropped and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay_translate._common import RAW_ARGUMENTS_KEY
    from ccrelay_translate.context_editing import CLEARED_TOOL_RESULT, apply_context_management
    from ccrelay_translate.events import anthropic_events_to_response, response_to_anthropic_events
    from ccrelay_translate.limits import MAX_DEPTH, check_depth
    from ccrelay_translate.naming import UNNAMED_TOOL, tool_name_map
    from ccrelay_translate.request import anthropic_to_openai_request
    from ccrelay_translate.response import openai_to_anthropic_response
    from ccrelay_translate.stream import OpenAIStreamTranslator
    from ccrelay_translate.tokens import IMAGE_TOKENS, estimate_tokens

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay_translate._common": ("RAW_ARGUMENTS_KEY",),
        "ccrelay_translate.context_editing": ("CLEARED_TOOL_RESULT", "apply_context_management"),
        "ccrelay_translate.events": (
            "anthropic_events_to_response",
            "response_to_anthropic_events",
        ),
        "ccrelay_translate.limits": ("MAX_DEPTH", "check_depth"),
        "ccrelay_translate.naming": ("UNNAMED_TOOL", "tool_name_map"),
        "ccrelay_translate.request": ("anthropic_to_openai_request",),
        "ccrelay_translate.response": ("openai_to_anthropic_response",),
        "ccrelay_translate.stream": ("OpenAIStreamTranslator",),
        "ccrelay_translate.tokens": ("IMAGE_TOKENS", "estimate_tokens"),
    },
)

__all__ = [
    "CLEARED_TOOL_RESULT",
    "IMAGE_TOKENS",
    "MAX_DEPTH",
    "RAW_ARGUMENTS_KEY",
    "UNNAMED_TOOL",
    "OpenAIStreamTranslator",
    "anthropic_events_to_response",
    "anthropic_to_openai_request",
    "apply_context_management",
    "check_depth",
    "estimate_tokens",
    "openai_to_anthropic_response",
    "response_to_anthropic_events",
    "tool_name_map",
]
