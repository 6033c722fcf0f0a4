"""The gateway's endpoints: Anthropic's Messages API as Claude Code calls it, plus /health.

- ``POST /v1/messages`` (``?beta=true`` accepted): through `Router` (the chosen backend, then its
  fallbacks). Streamed when ``stream: true``.
- ``POST /v1/messages/count_tokens``: exact when the backend can count (``count_tokens`` on the
  backend: the Anthropic pass-through asks upstream), else `estimate_tokens` (characters / 4,
  images flat); the ``x-ccrelay-token-count`` header says which (``exact`` / ``estimate``).
- ``GET /v1/models`` and ``GET /v1/models/{id}``: Anthropic's list shape, built from the config
  (see `model_catalog`).
- ``GET /`` (and ``HEAD``): a fixed liveness reply, the one path that needs no token;
- ``GET /health``: each backend's circuit state, and for a scale-to-zero one whether a worker
  is ``warm``, ``warming`` or ``cold`` (what ``ccrelay statusline`` shows); ``?deep=1`` also
  runs each chain backend's health check (a ``GET /models`` upstream), bounded by
  ``?timeout=`` seconds (default 10).

A request may name a backend with the ``x-ccrelay-backend`` header; the default is the
configured chain. Served replies carry ``request-id``, ``x-ccrelay-backend``,
``x-ccrelay-model``, ``x-ccrelay-attempts`` and ``x-ccrelay-failovers``; ``x-ccrelay-hedged:
true`` when a fallback answered because the self-hosted worker was cold.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from ccrelay.backends.stream import EventStream
from ccrelay.backends.types import Completion, RequestOptions
from ccrelay.gateway.auth import TokenCheck, forward_headers
from ccrelay.gateway.drain import Drain
from ccrelay.gateway.errors import Scrubber, error_response
from ccrelay.gateway.memory import IdleTrim
from ccrelay.gateway.streaming import SSE_HEADERS, relay
from ccrelay.gateway.validation import check, decode_body, read_body
from ccrelay.routing.chain import Served
from ccrelay.routing.rules import picker_targets
from ccrelay.runtime import Runtime
from ccrelay_config.models import CcrelayConfig

log = logging.getLogger("ccrelay.gateway")

# Listed models have no real creation date; a fixed, obviously synthetic one keeps the shape.
_SYNTHETIC_CREATED_AT = "1970-01-01T00:00:00Z"
_DEEP_HEALTH_TIMEOUT_S = 10.0


@dataclass
class GatewayState:
    runtime: Runtime
    auth: TokenCheck | None
    scrub: Scrubber
    max_body: int
    models: list[dict[str, Any]]
    models_body: bytes
    drain: Drain = field(default_factory=Drain)
    trim: IdleTrim | None = None


STATE = web.AppKey("ccrelay_gateway", GatewayState)
REQUEST_ID = web.RequestKey("ccrelay_request_id", str)
OUTCOME = web.RequestKey("ccrelay_outcome", str)


def served_headers(
    result: Served[Completion] | Served[EventStream], request_id: str
) -> dict[str, str]:
    headers = {
        "request-id": request_id,
        "x-ccrelay-backend": result.backend,
        "x-ccrelay-model": result.model,
        "x-ccrelay-attempts": str(result.attempts),
        "x-ccrelay-failovers": str(result.failovers),
        "x-ccrelay-route": result.route,
    }
    if result.cache:
        headers["x-ccrelay-cache"] = result.cache
    if result.hedged:
        headers["x-ccrelay-hedged"] = "true"
    return headers


def _options(request: web.Request, state: GatewayState) -> RequestOptions:
    headers = request.headers
    return RequestOptions(
        request_id=request[REQUEST_ID],
        forward_headers=forward_headers(headers, auth_on=state.auth is not None),
        session_id=hint_header(headers.get("x-claude-code-session-id")),
        request_class=hint_header(headers.get("x-claude-code-request-class")),
        agent_type=hint_header(headers.get("x-claude-code-agent-type")),
    )


def hint_header(value: str | None) -> str | None:
    """A Claude Code hint header, trusted only as a short printable word (it names a record's
    session and a routing rule; anything else is ignored)."""
    if value is None or not 0 < len(value) <= 128 or not value.isprintable():
        return None
    return value.strip() or None


async def _body(request: web.Request, state: GatewayState) -> bytes:
    limits = state.runtime.config.gateway.inbound
    return await read_body(request, max_body=state.max_body, limits=limits)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = decode_body(await _body(request, state))
    check("messages", body)
    options = _options(request, state)
    backend = request.headers.get("x-ccrelay-backend") or None
    router = state.runtime.router
    if body.get("stream") is True:
        served = await router.open_stream(body, options, backend)
        response = web.StreamResponse(
            headers={**SSE_HEADERS, **served_headers(served, options.request_id)}
        )
        request[OUTCOME] = await relay(
            request,
            response,
            served.result,
            request_id=options.request_id,
            scrub=state.scrub,
            drain=state.drain,
        )
        return response
    completion = await router.complete(body, options, backend)
    return web.Response(
        body=orjson.dumps(completion.result.response),
        content_type="application/json",
        headers=served_headers(completion, options.request_id),
    )


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = decode_body(await _body(request, state))
    check("count_tokens", body)
    options = _options(request, state)
    backend = request.headers.get("x-ccrelay-backend") or None
    count = await state.runtime.router.count_tokens(body, options, backend)
    return web.Response(
        body=orjson.dumps({"input_tokens": count.tokens}),
        content_type="application/json",
        headers={
            "request-id": options.request_id,
            "x-ccrelay-backend": count.backend,
            "x-ccrelay-token-count": "exact" if count.exact else "estimate",
        },
    )


_ROOT = orjson.dumps({"service": "ccrelay", "api": "anthropic-messages"})


async def root(request: web.Request) -> web.Response:
    """``GET /`` / ``HEAD /``: Claude Code opens its connection with ``HEAD /``."""
    return web.Response(body=_ROOT, content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.Response(
        body=state.models_body,
        content_type="application/json",
        headers={"request-id": request[REQUEST_ID]},
    )


async def get_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    model_id = request.match_info["model_id"]
    for entry in state.models:
        if entry["id"] == model_id:
            return web.Response(
                body=orjson.dumps(entry),
                content_type="application/json",
                headers={"request-id": request[REQUEST_ID]},
            )
    return error_response(
        404,
        "not_found_error",
        f"model: {model_id} is not configured in this gateway (GET /v1/models lists them)",
        request[REQUEST_ID],
    )


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    runtime = state.runtime
    router = runtime.router
    chain = router.chain()
    circuits = router.states()
    backends: dict[str, dict[str, Any]] = {
        name: {
            "type": settings.type,
            "model": settings.model,
            "circuit": circuits.get(name, "closed"),
            "in_chain": name in chain,
        }
        for name, settings in runtime.config.backends.items()
    }
    for name in chain:  # a scale-to-zero backend: is a worker up for the next prompt?
        driver = router.cold_start(name)
        if driver is not None:
            backends[name]["worker"] = driver.state()
    usable = [name for name in chain if backends[name]["circuit"] != "open"]
    deep = request.query.get("deep", "") not in ("", "0", "false", "no")
    if deep:
        timeout = _float(request.query.get("timeout"), _DEEP_HEALTH_TIMEOUT_S)
        reports = await asyncio.gather(
            *(runtime.factory.get(name).checked_health(timeout) for name in chain)
        )
        for name, report in zip(chain, reports, strict=True):
            backends[name].update(
                ok=report.ok, detail=report.detail, latency_ms=round(report.latency_ms, 1)
            )
        usable = [name for name in chain if backends[name]["ok"]]
    status = "ok" if len(usable) == len(chain) else "degraded" if usable else "unavailable"
    payload = {
        "status": status,
        "active": runtime.config.active,
        "chain": chain,
        "multi_backend": runtime.config.multi_backend_enabled,
        "backends": backends,
    }
    return web.Response(
        status=200 if usable else 503,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers={"request-id": request[REQUEST_ID], "Cache-Control": "no-store"},
    )


def _float(value: str | None, default: float) -> float:
    try:
        return min(max(float(value), 0.1), 120.0) if value else default
    except ValueError:
        return default


def model_catalog(config: CcrelayConfig) -> list[dict[str, Any]]:
    """What GET /v1/models lists, in Anthropic's shape (with ``lifecycle``, which the SDK's
    strict validation requires since 2.16):

    - the Claude names the chain's ``models`` maps name literally (patterns cannot be listed);
    - each chain backend's default model, in chain order;
    - every backend and model under a picker id (`ccrelay.routing.rules.picker_id`), which
      Claude Code's ``/model`` picker keeps (it drops ids without ``claude``; discovery is on
      with ``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1``, which ``ccrelay code`` sets).

    ``display_name`` and ``description`` say where each goes; ``BACKEND,MODEL`` still works when
    typed, but is not listed twice."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(model_id: str, display: str, description: str, window: int | None = None) -> None:
        if model_id and model_id not in seen:
            seen.add(model_id)
            entry: dict[str, Any] = {
                "type": "model",
                "id": model_id,
                "display_name": display,
                "description": description,
                "created_at": _SYNTHETIC_CREATED_AT,
                "lifecycle": "active",
            }
            if window:
                entry["max_input_tokens"] = window
            entries.append(entry)

    for name in config.chain():
        settings = config.backends[name]
        for pattern, target in settings.models.items():
            if not any(ch in pattern for ch in "*?["):
                add(pattern, f"{pattern} -> {target} ({name})", f"served by {name} as {target}")
    for name in config.chain():
        model = config.backends[name].model
        if model:
            add(model, f"{model} ({name})", f"served by {name}")
    for picker, (name, model) in picker_targets(config).items():
        window = config.backends[name].context_window
        if model == "default":
            add(picker, f"{name} (its default model)", f"ccrelay: {name},default", window)
        else:
            add(picker, f"{model} on {name}", f"ccrelay: {name},{model}", window)
    return entries


def models_page(entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "data": entries,
            "has_more": False,
            "first_id": entries[0]["id"] if entries else None,
            "last_id": entries[-1]["id"] if entries else None,
        }
    )
