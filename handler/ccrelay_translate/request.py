"""An Anthropic Messages request -> an OpenAI chat-completions request body.

The map, field by field (``caps`` is the backend's `Capabilities`):

==============================  ===========================================================
Anthropic (what Claude Code     OpenAI chat
sends)
==============================  ===========================================================
``system``, ``messages``        ``messages`` (`ccrelay_translate.messages`): one leading
                                system message, no billing-header line, mid-conversation
                                system messages as ``<system-reminder>`` user text, thinking
                                as ``reasoning`` where the backend reads it, tool ids and
                                names as the upstream knows them (`ccrelay_translate.naming`)
``tools``, ``tool_choice``      ``tools``, ``tool_choice``, ``parallel_tool_calls``
                                (`ccrelay_translate.tools`), schema keywords stripped, names
                                over 64 characters shortened
``max_tokens``                  ``max_tokens``, clamped to the backend's limit
``stop_sequences``              ``stop``: the first ``caps.max_stop`` (4), a log line if cut
``temperature``, ``top_p``      the same
``stream``                      ``stream`` (+ ``stream_options.include_usage``)
``output_config.format``        ``response_format: {type: json_schema, json_schema: {name,
(json_schema: session titles)   schema, strict}}`` when ``caps.structured_output``; strict
                                only for a schema OpenAI's strict mode takes
                                (`ccrelay_translate.structured`)
``output_config.effort``,       ``reasoning_effort``, the nearest value the backend takes
``thinking``                    (``caps.reasoning_efforts``; none: not sent); the thinking
                                display decides how reasoning comes back (`thinking_display`)
``context_management``,         dropped: no OpenAI equivalent (server-side features of
``metadata``, ``service_tier``, Anthropic's API)
``top_k``, ``container``,
``mcp_servers``, ``betas``
==============================  ===========================================================
"""

from __future__ import annotations

import logging
from typing import Any

from ccrelay_translate.capabilities import Capabilities
from ccrelay_translate.documents import DocumentTexts
from ccrelay_translate.errors import InvalidRequest
from ccrelay_translate.messages import translate_messages
from ccrelay_translate.structured import response_format as _response_format
from ccrelay_translate.tools import translate_tool_choice, translate_tools

log = logging.getLogger("ccrelay.translate")

_EFFORT_ORDER = ("minimal", "low", "medium", "high")


def anthropic_to_openai_request(
    request: dict[str, Any],
    *,
    model: str,
    max_tokens_limit: int | None = None,
    stream: bool | None = None,
    include_usage: bool = True,
    caps: Capabilities | None = None,
    documents: DocumentTexts | None = None,
    keep_billing: bool = False,
) -> dict[str, Any]:
    """The chat-completions body for ``request``, addressed to the backend's ``model``.

    ``max_tokens`` is clamped to ``max_tokens_limit`` when one is given. ``stream``, when
    given, overrides the request's own; a streamed body asks for a final usage chunk
    (``stream_options.include_usage``) unless ``include_usage`` is False. The result shares
    tool schemas with ``request`` (no deep copy): treat both as read-only.
    Raises `InvalidRequest` naming the offending path for a malformed request.
    """
    if not isinstance(request, dict):
        raise InvalidRequest("request: must be a JSON object")
    caps = caps or Capabilities()
    messages = translate_messages(request, caps, documents, keep_billing=keep_billing)
    body: dict[str, Any] = {"model": model, "messages": messages}

    # `max_tokens` is what Cerebras, vLLM, Ollama and LiteLLM all accept; OpenAI itself now
    # prefers `max_completion_tokens` (required for its reasoning models), which many
    # compatible servers do not know yet. A backend for such a model can rename the field.
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: must be a positive integer")
    if max_tokens_limit is not None:
        max_tokens = min(max_tokens, max_tokens_limit)
    body["max_tokens"] = max_tokens

    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name}: must be a number")
        body[name] = value

    stop = request.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("stop_sequences: must be a list of strings")
        if len(stop) > caps.max_stop:
            log.info(
                "stop_sequences: %d given, the backend takes %d: sending the first %d",
                len(stop),
                caps.max_stop,
                caps.max_stop,
            )
            stop = stop[: caps.max_stop]
        if stop:
            body["stop"] = list(stop)

    output_config = request.get("output_config")
    if isinstance(output_config, dict):
        response_format = _response_format(output_config.get("format"))
        if response_format is not None and caps.structured_output:
            body["response_format"] = response_format
    effort = reasoning_effort(request, caps.reasoning_efforts)
    if effort is not None:
        body["reasoning_effort"] = effort

    functions, dropped = translate_tools(request.get("tools"), caps.strip_schema_keywords)
    if functions:
        body["tools"] = functions
        choice, parallel = translate_tool_choice(request.get("tool_choice"), functions, dropped)
        if choice is not None:
            body["tool_choice"] = choice
        if parallel is not None:
            body["parallel_tool_calls"] = parallel

    streaming = bool(request.get("stream", False)) if stream is None else stream
    body["stream"] = streaming
    if streaming and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def reasoning_effort(request: dict[str, Any], accepted: tuple[str, ...]) -> str | None:
    """The ``reasoning_effort`` to send: what the request asks for, as the nearest value the
    backend accepts; None when it accepts none or the request asks for no thinking.

    ``output_config.effort`` wins (``max`` counts as ``high``); else ``thinking``: enabled with
    a ``budget_tokens`` under 4k is low, under 16k medium, more high; adaptive is medium.
    """
    if not accepted:
        return None
    wanted: str | None = None
    output_config = request.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("effort"), str):
        wanted = output_config["effort"].lower()
        wanted = "high" if wanted in ("max", "xhigh") else wanted
    thinking = request.get("thinking")
    if wanted is None and isinstance(thinking, dict):
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            budget = budget if isinstance(budget, int) else 8192
            wanted = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
        elif thinking.get("type") == "adaptive":
            wanted = "medium"
    if wanted is None or wanted not in _EFFORT_ORDER:
        return None
    if wanted in accepted:
        return wanted
    rank = _EFFORT_ORDER.index(wanted)
    ranked = [value for value in accepted if value in _EFFORT_ORDER]
    if not ranked:
        return None
    return min(ranked, key=lambda value: abs(_EFFORT_ORDER.index(value) - rank))


def thinking_display(request: dict[str, Any]) -> str:
    """How reasoning comes back, as Anthropic would return it for this request.

    ``none``: thinking not asked for, so no thinking blocks; ``omitted``: thinking blocks with
    empty text (``thinking.display: "omitted"``, what Claude Code sends); ``summarized``: the
    reasoning text in thinking blocks (the default display when thinking is on).
    """
    thinking = request.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return "none"
    return "omitted" if thinking.get("display") == "omitted" else "summarized"
