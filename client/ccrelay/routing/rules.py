"""Which backend (and model) a request goes to: the routing rules, first match wins.

1. ``explicit``: the request's model is written ``BACKEND,MODEL`` (``/model cerebras,gpt-oss-120b``
   in Claude Code switches backend mid-session; ``GET /v1/models`` lists these names);
2. ``header``: the ``x-ccrelay-backend`` request header names a backend;
3. ``long_context``: the prompt's estimate is above ``routing.long_context.threshold_tokens``;
4. ``background``: the requested model is haiku-class (``routing.background_models``): Claude
   Code's titles, summaries and other side requests;
5. ``thinking``: the request asks for thinking (``thinking.type`` enabled or adaptive);
6. ``default``: the active backend.

Then its fallbacks follow, in config order. A route's ``model`` applies to its own backend only.
The chosen rule is said in the ``x-ccrelay-route`` header, the log line and the latency records.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ccrelay_config.models import CcrelayConfig

__all__ = ["Routed", "explicit_backend", "route"]


@dataclass(frozen=True)
class Routed:
    rule: str
    chain: list[str]
    models: dict[str, str] = field(default_factory=dict)
    """Backend -> the model a rule asked for on it."""


def explicit_backend(model: object, config: CcrelayConfig) -> tuple[str, str] | None:
    """(backend, model) for a model written ``BACKEND,MODEL`` naming a configured backend."""
    if not isinstance(model, str) or "," not in model:
        return None
    backend, _, name = model.partition(",")
    backend, name = backend.strip(), name.strip()
    if backend in config.backends and name:
        return backend, name
    return None


def route(
    request: dict[str, Any],
    config: CcrelayConfig,
    *,
    header_backend: str | None,
    prompt_tokens: int | None,
) -> Routed:
    routing = config.routing
    explicit = explicit_backend(request.get("model"), config)
    if explicit is not None:
        backend, model = explicit
        models = {backend: model} if model != "default" else {}  # BACKEND,default: its own
        return Routed("explicit", config.chain(backend), models)
    if header_backend:
        return Routed("header", config.chain(header_backend))
    long_context = routing.long_context
    if (
        long_context is not None
        and prompt_tokens is not None
        and prompt_tokens > long_context.threshold_tokens
    ):
        return _to("long_context", long_context.backend, long_context.model, config)
    requested = request.get("model")
    background = routing.background
    if (
        background is not None
        and isinstance(requested, str)
        and any(fnmatch.fnmatchcase(requested, pattern) for pattern in routing.background_models)
    ):
        return _to("background", background.backend, background.model, config)
    thinking = request.get("thinking")
    if (
        routing.thinking is not None
        and isinstance(thinking, dict)
        and thinking.get("type") in ("enabled", "adaptive")
    ):
        return _to("thinking", routing.thinking.backend, routing.thinking.model, config)
    return Routed("default", config.chain())


def _to(rule: str, backend: str, model: str | None, config: CcrelayConfig) -> Routed:
    return Routed(rule, config.chain(backend), {backend: model} if model else {})
