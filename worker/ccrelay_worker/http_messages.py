"""HTTP mode's Anthropic routes: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

What a RunPod pod, a load-balanced endpoint (``https://{id}.api.runpod.ai``) or any host
serves to Claude Code directly, and to the gateway's ``runpod`` backend on a load balancer.
`ccrelay_handler.messages` does the work; this module only speaks HTTP, as Anthropic's API
does:

- errors are Anthropic's shape, ``{"type": "error", "error": {"type", "message"}}``, with the
  status of the handler's error type (a prompt over the window is a 400 in the words Claude
  Code compacts on);
- a stream's first event is pulled before the headers go out, so an early error keeps its
  HTTP status; later errors end the stream with an SSE ``error`` event, never a fake
  ``message_stop`` (`ccrelay_worker.sse_relay`);
- the cache verdict is the ``x-ccrelay-cache`` header, and ``x_ccrelay_cache`` on the message
  (or on ``message_start``'s).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ccrelay_handler.errors import HandlerError
from ccrelay_handler.messages import MessagesService, anthropic_error, anthropic_sse
from ccrelay_handler.service import StreamVerdict
from ccrelay_worker.sse_relay import SSEDialect, relay_sse

__all__ = ["MESSAGES", "add_routes"]

logger = logging.getLogger("ccrelay.worker.http")

MESSAGES = web.AppKey("ccrelay_messages_service", MessagesService)

ReadJson = Callable[[web.Request], Awaitable[Any]]
"""The app's body reader (inbound limits): the decoded body, or the refusal to answer with."""


def error_response(exc: HandlerError) -> web.Response:
    return web.json_response(anthropic_error(exc), status=exc.http_status)


_INTERNAL = {"type": "error", "error": {"type": "api_error", "message": "internal error"}}


def _internal_error() -> web.Response:
    return web.json_response(_INTERNAL, status=500)


def add_routes(app: web.Application, read_json: ReadJson, messages: MessagesService) -> None:
    app[MESSAGES] = messages

    async def create(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        if isinstance(body, web.StreamResponse):
            return body
        service = request.app[MESSAGES]
        try:
            if not (isinstance(body, dict) and body.get("stream") is True):
                return web.json_response(await service.complete(body))
            prepared = await service.prepare(body, stream=True)
        except HandlerError as exc:
            return error_response(exc)
        except Exception:
            logger.exception("a messages request failed unexpectedly")
            return _internal_error()
        verdict = StreamVerdict()
        events = service.stream(prepared, verdict=verdict)
        return await relay_sse(request, events, verdict, MESSAGES_SSE)

    async def count_tokens(request: web.Request) -> web.Response:
        body = await read_json(request)
        if isinstance(body, web.Response):
            return body
        try:
            return web.json_response(request.app[MESSAGES].count_tokens(body))
        except HandlerError as exc:
            return error_response(exc)

    app.router.add_post("/v1/messages", create)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)


def _error_event(exc: HandlerError | None) -> str:
    if exc is None:
        return anthropic_sse(_INTERNAL)
    return anthropic_sse(anthropic_error(exc))


def _refusal(exc: HandlerError | None) -> web.Response:
    return _internal_error() if exc is None else error_response(exc)


MESSAGES_SSE = SSEDialect("messages stream", anthropic_sse, _error_event, _refusal)
