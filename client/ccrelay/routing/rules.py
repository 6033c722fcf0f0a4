"""Which backend (and model) a request goes to: the routing rules, first match wins.

1. ``explicit``: the request's model names a backend: written ``BACKEND,MODEL``
   (``/model cerebras,gpt-oss-120b``), or a picker id that ``GET /v1/models`` lists
   (``claude-via-cerebras-gpt-oss-120b``: Claude Code's ``/model`` picker keeps only ids that
   contain ``claude``, so each backend and model is listed under one);
2. ``header``: the ``x-ccrelay-backend`` request header names a backend;
3. ``long_context``: the prompt's estimate is above ``routing.long_context.threshold_tokens``;
4. ``class:<class>`` / ``agent:<type>``: Claude Code said what the request is
   (``x-claude-code-request-class``, ``x-claude-code-agent-type``) and ``routing.classes`` /
   ``routing.agent_types`` has a route for it;
5. ``background``: a side request (titles, summaries): the ``auxiliary`` class when Claude Code
   says the class, else a haiku-class model name (``routing.background_models``);
6. ``thinking``: the request asks for thinking (``thinking.type`` enabled or adaptive);
7. ``default``: the active backend.

Then its fallbacks follow, in config order. A route's ``model`` applies to its own backend only.
The chosen rule is said in the ``x-ccrelay-route`` header, the log line and the latency records.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from ccrelay_config.models import CcrelayConfig, Route

__all__ = [
    "PICKER_PREFIX",
    "Routed",
    "explicit_backend",
    "picker_id",
    "picker_targets",
    "route",
]

PICKER_PREFIX = "claude-via-"
"""Picker ids start with ``claude`` (Claude Code 2.1.197 keeps ids that start with it, 2.1.332
ids that contain it) and say they are not Anthropic's."""

_UNSAFE = re.compile(r"[^a-z0-9.]+")


@dataclass(frozen=True)
class Routed:
    rule: str
    chain: list[str]
    models: dict[str, str] = field(default_factory=dict)
    """Backend -> the model a rule asked for on it."""


def picker_id(backend: str, model: str) -> str:
    """The id ``GET /v1/models`` lists for a backend's model: ``claude-via-<backend>-<model>``,
    lower-cased, with anything but letters, digits and dots as one dash. Resolved back through
    the config (`explicit_backend`), never parsed, so a lossy slug is fine."""
    return PICKER_PREFIX + _UNSAFE.sub("-", f"{backend}-{model}".lower()).strip("-")


def picker_targets(config: CcrelayConfig) -> dict[str, tuple[str, str]]:
    """Every picker id of a config -> (backend, model): each backend's models (its own, its
    ``models`` map's targets, those its routes name), and ``default`` for a backend with no
    model of its own (it picks one)."""
    targets: dict[str, tuple[str, str]] = {}
    for name, settings in config.backends.items():
        models = [settings.model, *settings.models.values()]
        models += [r.model for r in config.routing.routes().values() if r.backend == name]
        for model in dict.fromkeys(m for m in models if m):
            targets.setdefault(picker_id(name, model), (name, model))
        if not settings.model:  # it picks its own (Cerebras' catalog): "default" says so
            targets.setdefault(picker_id(name, "default"), (name, "default"))
    return targets


def explicit_backend(
    model: object, config: CcrelayConfig, pickers: dict[str, tuple[str, str]]
) -> tuple[str, str] | None:
    """(backend, model) for a model written ``BACKEND,MODEL`` naming a configured backend, or
    one of the config's picker ids (`picker_targets`)."""
    if not isinstance(model, str):
        return None
    if model.startswith(PICKER_PREFIX):
        return pickers.get(model)
    if "," not in model:
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
    pickers: dict[str, tuple[str, str]],
    request_class: str | None = None,
    agent_type: str | None = None,
) -> Routed:
    routing = config.routing
    explicit = explicit_backend(request.get("model"), config, pickers)
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
        return _to("long_context", long_context, config)
    if request_class:
        if agent_type and agent_type in routing.agent_types:
            return _to(f"agent:{agent_type}", routing.agent_types[agent_type], config)
        if request_class in routing.classes:
            return _to(f"class:{request_class}", routing.classes[request_class], config)
        if routing.background is not None and request_class == "auxiliary":
            return _to("background", routing.background, config)
    else:
        requested = request.get("model")
        background = routing.background
        if (
            background is not None
            and isinstance(requested, str)
            and any(fnmatch.fnmatchcase(requested, p) for p in routing.background_models)
        ):
            return _to("background", background, config)
    thinking = request.get("thinking")
    if (
        routing.thinking is not None
        and isinstance(thinking, dict)
        and thinking.get("type") in ("enabled", "adaptive")
    ):
        return _to("thinking", routing.thinking, config)
    return Routed("default", config.chain())


def _to(rule: str, target: Route, config: CcrelayConfig) -> Routed:
    return Routed(
        rule, config.chain(target.backend), {target.backend: target.model} if target.model else {}
    )
