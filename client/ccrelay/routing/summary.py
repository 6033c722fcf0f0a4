"""What one client request came to, across retries and failover: the router's `RequestSummary`.

The attempt records say how each try at a backend went; a request that failed twice and was
then served by the fallback is one success to the client, and the request-level record says
so (issue 16). The router builds a summary when a plain call returns or fails, and when a
stream ends, and hands it to its `RequestObserver` (the latency recorder).

Nothing of the prompt is kept: the conversation is told apart by its session and by sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ccrelay.backends.stream import EventStream
from ccrelay.backends.types import Completion, RequestOptions
from ccrelay.errors import AllBackendsFailed, CcrelayError, outcome_word
from ccrelay.latency.observer import RequestSummary, elapsed_ms

if TYPE_CHECKING:
    from ccrelay.routing.chain import Served

__all__ = ["conversation_key", "failed", "served"]


def served(
    request: Mapping[str, Any],
    options: RequestOptions,
    started: float,
    result: Served[Completion] | Served[EventStream],
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
        backend_type=result.backend_type,
        model=result.model,
        route=result.route,
        outcome="ok" if error is None else outcome_word(error),
        status=200 if status is None else status,  # a broken stream had its 200 headers
        attempts=result.attempts,
        failovers=result.failovers,
        backoff_ms=round(options.tally.backoff_ms, 3),
        latency_ms=elapsed_ms(started),
        ttfb_ms=ttfb_ms,
        streamed=isinstance(result.result, EventStream),
        usage=dict(usage),
        cache=result.cache,
        conversation=conversation_key(request, options.session_id),
        session=options.session_id,
        request_class=options.request_class,
        hedged=result.hedged,
        cold_wait_ms=_rounded(options.tally.cold_wait_ms),
    )


def failed(
    request: Mapping[str, Any],
    options: RequestOptions,
    started: float,
    rule: str | None,
    error: BaseException,
    *,
    backend_type: str,
    streamed: bool = False,
) -> RequestSummary:
    """A request no backend answered (or that was refused before any was tried);
    `backend_type` is the type of the backend the error names ("" for none)."""
    ours = error if isinstance(error, CcrelayError) else None
    return RequestSummary(
        request_id=options.request_id,
        requested_model=_requested_model(request),
        backend=ours.backend if ours is not None else "",
        backend_type=backend_type,
        model=_requested_model(request) or "",
        route=rule or "default",
        outcome=outcome_word(error),
        status=_status(error),
        attempts=ours.attempts if ours is not None else 0,
        failovers=max(len(error.errors) - 1, 0) if isinstance(error, AllBackendsFailed) else 0,
        backoff_ms=round(options.tally.backoff_ms, 3),
        latency_ms=elapsed_ms(started),
        ttfb_ms=None,
        streamed=streamed,
        usage={},
        cache=None,
        conversation=conversation_key(request, options.session_id),
        session=options.session_id,
        request_class=options.request_class,
        cold_wait_ms=_rounded(options.tally.cold_wait_ms),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def conversation_key(request: Mapping[str, Any], session_id: str | None = None) -> str:
    """What tells one conversation from another without reading it: Claude Code's session
    (its ``X-Claude-Code-Session-Id``, else ``metadata.user_id``, which holds it), the model,
    and the sizes of its tools and system prompt (a sub-agent has other tools and another
    system prompt than the main loop). O(blocks)."""
    metadata = request.get("metadata")
    user = session_id or (metadata.get("user_id") if isinstance(metadata, Mapping) else None)
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
    return error.upstream_status if isinstance(error, CcrelayError) else None


def _requested_model(request: Mapping[str, Any]) -> str | None:
    model = request.get("model")
    return model if isinstance(model, str) else None
