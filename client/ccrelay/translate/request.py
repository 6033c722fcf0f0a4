"""An Anthropic Messages request -> an OpenAI chat-completions request body.

Kept: ``messages`` and ``system`` (see `client.translate.messages`), ``tools`` and
``tool_choice`` (see `client.translate.tools`), ``max_tokens`` (clamped), ``stop_sequences``
(as ``stop``), ``temperature``, ``top_p``, ``stream``.

Dropped, because an OpenAI-compatible target has no equivalent or would reject them:
``thinking`` (also ``{"type": "adaptive"}``), ``context_management``, ``output_config``,
``metadata``, ``service_tier``, ``top_k``, ``container``, ``mcp_servers``, ``betas`` and every
other field this module does not name.
"""

from __future__ import annotations

from typing import Any

from ccrelay.errors import InvalidRequestError
from ccrelay.translate.messages import translate_messages
from ccrelay.translate.tools import translate_tool_choice, translate_tools


def anthropic_to_openai_request(
    request: dict[str, Any],
    *,
    model: str,
    max_tokens_limit: int | None = None,
    stream: bool | None = None,
    include_usage: bool = True,
) -> dict[str, Any]:
    """The chat-completions body for ``request``, addressed to the backend's ``model``.

    ``max_tokens`` is clamped to ``max_tokens_limit`` when one is given. ``stream``, when
    given, overrides the request's own; a streamed body asks for a final usage chunk
    (``stream_options.include_usage``) unless ``include_usage`` is False. The result shares
    tool schemas with ``request`` (no deep copy): treat both as read-only.
    Raises `InvalidRequestError` naming the offending path for a malformed request.
    """
    if not isinstance(request, dict):
        raise InvalidRequestError("request: must be a JSON object")
    body: dict[str, Any] = {"model": model, "messages": translate_messages(request)}

    # `max_tokens` is what Cerebras, vLLM, Ollama and LiteLLM all accept; OpenAI itself now
    # prefers `max_completion_tokens` (required for its reasoning models), which many
    # compatible servers do not know yet. A backend for such a model can rename the field.
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError("max_tokens: must be a positive integer")
    if max_tokens_limit is not None:
        max_tokens = min(max_tokens, max_tokens_limit)
    body["max_tokens"] = max_tokens

    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"{name}: must be a number")
        body[name] = value

    stop = request.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequestError("stop_sequences: must be a list of strings")
        if stop:
            body["stop"] = list(stop)

    functions, dropped = translate_tools(request.get("tools"))
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
