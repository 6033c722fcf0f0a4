"""What one client request came to, across retries and failover: the router's `RequestSummary`.

The attempt records say how each try at a backend went; a request that failed twice and was
then served by the fallback is one success to the client, and the request-level record says
so (issue 16). The router builds a summary when a plain call returns or fails, and when a
stream ends, and hands it to its `RequestObserver` (the latency recorder).

Nothing of the prompt is kept: the conversation is told apart by its session and by sizes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ccrelay.backends.base import (
    Completion,
    EventStream,
    RequestOptions,
    RequestSummary,
    outcome_word,
)

if TYPE_CHECKING:
    from ccrelay.routing.chain import Router

__all__ = ["conversation_key", "elapsed_ms", "failed", "served"]


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def served(
    router: Router,
    request: Mapping[str, Any],
    options: RequestOptions,
    started: float,
    result: Completion | EventStream,
    usage: Mapping[str, Any],
    ttfb_ms: float | None,
    error: BaseException | None,
) -> RequestSummary:
    """A request a backend answered; ``error``: how its stream ended, when it broke."""
    status = _status(error) if error is not None else None
    return RequestSummary(
        request_id=options.request_id,
        requested_model=_requested_model(request),
        backend=result.backend,
        backend_type=router.factory.get(result.backend).type_name,
        model=result.model,
        route=result.route,
        outcome="ok" if error is None else outcome_word(error),
        status=200 if status is None else status,  # a broken stream had its 200 headers
        attempts=result.attempts,
        failovers=result.failovers,
        backoff_ms=round(options.tally.backoff_ms, 3),
        latency_ms=elapsed_ms(started),
        ttfb_ms=ttfb_ms,
        streamed=isinstance(result, EventStream),
        usage=dict(usage),
        cache=result.cache,
        conversation=conversation_key(request),
    )


def failed(
    router: Router,
    request: Mapping[str, Any],
    options: RequestOptions,
    started: float,
    rule: str | None,
    error: BaseException,
    *,
    streamed: bool = False,
) -> RequestSummary:
    """A request no backend answered (or that was refused before any was tried)."""
    tried = _last_backend(error)
    backend_type = ""
    if tried and tried in router.config.backends:
        backend_type = router.factory.get(tried).type_name
    return RequestSummary(
        request_id=options.request_id,
        requested_model=_requested_model(request),
        backend=tried,
        backend_type=backend_type,
        model=str(getattr(error, "model", None) or _requested_model(request) or ""),
        route=rule or "default",
        outcome=outcome_word(error),
        status=_status(error),
        attempts=int(getattr(error, "attempts", 0) or 0),
        failovers=max(len(getattr(error, "errors", ()) or ()) - 1, 0),
        backoff_ms=round(options.tally.backoff_ms, 3),
        latency_ms=elapsed_ms(started),
        ttfb_ms=None,
        streamed=streamed,
        usage={},
        cache=None,
        conversation=conversation_key(request),
    )


def conversation_key(request: Mapping[str, Any]) -> str:
    """What tells one conversation from another without reading it: Claude Code's session
    (``metadata.user_id``), the model, and the sizes of its tools and system prompt (a
    sub-agent has other tools and another system prompt than the main loop). O(blocks)."""
    metadata = request.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    tools = request.get("tools")
    system = request.get("system")
    if isinstance(system, str):
        system_size = len(system)
    elif isinstance(system, list):
        system_size = sum(
            len(block.get("text") or "") for block in system if isinstance(block, Mapping)
        )
    else:
        system_size = 0
    tool_count = len(tools) if isinstance(tools, list) else 0
    return f"{user or ''}|{request.get('model') or ''}|{tool_count}|{system_size}"


def _status(error: BaseException) -> int | None:
    """The last upstream HTTP status, when an answer came (as on attempt records)."""
    errors = getattr(error, "errors", None)
    if errors:
        error = errors[-1]
    status = getattr(error, "upstream_status", None)
    return status if isinstance(status, int) else None


def _requested_model(request: Mapping[str, Any]) -> str | None:
    model = request.get("model")
    return model if isinstance(model, str) else None


def _last_backend(error: BaseException) -> str:
    backend = getattr(error, "backend", None)
    if isinstance(backend, str):
        return backend
    errors = getattr(error, "errors", None)
    if errors:
        last = getattr(errors[-1], "backend", None)
        return last if isinstance(last, str) else ""
    return ""
