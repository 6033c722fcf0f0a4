"""The worker's HTTP mode: the same services as the RunPod handler, over HTTP.

Routes, Anthropic's (`ccrelay_worker.http_messages`: Claude Code, or the gateway's ``runpod``
backend on a load-balanced endpoint):

* ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``;

OpenAI's (so any OpenAI client or ccrelay's ``openai`` backend can use it):

* ``POST /v1/chat/completions``: plain, or ``"stream": true`` as OpenAI SSE
  (``data: {chunk}\\n\\n`` ... ``data: [DONE]\\n\\n``). The cache verdict ("hit", "miss",
  "bypass") is the field ``x_ccrelay_cache`` of the completion, or of a stream's first chunk,
  and a stream's ``x-ccrelay-cache`` response header;
* ``GET /v1/models``: the models this worker serves;

and health (no auth):

* ``GET /health``: liveness, with the cache's state;
* ``GET /ping``: RunPod's load-balancer health check: 200 once the worker serves (while the
  model loads, `ccrelay_worker.starting` answers 204 on the same port).

When ``CCRELAY_WORKER_API_KEY`` is set every ``/v1`` route needs ``Authorization: Bearer
<key>`` (compared in constant time).  Errors use OpenAI's shape
``{"error": {"message", "type", "param", "code"}}``, status from the ``ccrelay_handler.errors`` type.
An error after a stream has started is sent as a final ``data: {"error": ...}`` event.
A client that disconnects mid-stream closes the service's stream: Ollama is stopped and
nothing partial is cached.

This face is meant to be reached over a network (pods, Vast.ai, load-balanced endpoints), and
the key is checked only once a request's headers are in, so the server listens through an
``InboundGuard`` (``ccrelay_wire.inbound``): deadlines for a request's headers, its body and an
idle connection, and a cap on connections that have not sent their headers yet, from
``CCRELAY_HTTP_*`` (``ccrelay_worker.settings.inbound_limits``; docs/deploy.md, "Inbound
limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from ccrelay_handler.chunks import SSE_DONE, sse_event
from ccrelay_handler.errors import HandlerError, InvalidInput
from ccrelay_handler.messages import MessagesService
from ccrelay_handler.request import parse_chat_request
from ccrelay_handler.service import ChatService, StreamVerdict
from ccrelay_handler.settings import HandlerSettings
from ccrelay_wire import CACHE_VERDICT_FIELD
from ccrelay_wire.inbound import (
    BodyTimeout,
    BodyTooLarge,
    InboundGuard,
    InboundLimits,
    close_soon,
    http_reply,
    raise_open_file_limit,
    read_body,
)
from ccrelay_worker.http_messages import add_routes
from ccrelay_worker.settings import inbound_limits
from ccrelay_worker.sse_relay import SSEDialect, relay_sse
from ccrelay_worker.starting import Listeners
from ccrelay_worker.stop_signals import StopSignals

__all__ = ["SERVICE", "build_app", "run"]

logger = logging.getLogger("ccrelay.worker.http")

SERVICE = web.AppKey("ccrelay_chat_service", ChatService)
_API_KEY = web.AppKey("ccrelay_api_key", bytes)
_INBOUND = web.AppKey("ccrelay_inbound", InboundGuard)
# Claude Code conversations (long contexts, tool definitions) outgrow aiohttp's 1 MiB default.
_MAX_BODY_BYTES = 64 * 1024 * 1024


def _error_body(
    message: str, error_type: str, code: str, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _error_response(exc: HandlerError) -> web.Response:
    param = exc.field if isinstance(exc, InvalidInput) else None
    return web.json_response(
        _error_body(str(exc), exc.error_type, exc.code, param), status=exc.http_status
    )


def _internal_error() -> web.Response:
    return web.json_response(
        _error_body("internal error", "api_error", "internal_error"), status=500
    )


_HEADER_TIMEOUT_REPLY = http_reply(
    408,
    "Request Timeout",
    json.dumps(
        _error_body(
            "the request's headers did not arrive in time; send them again",
            "invalid_request_error",
            "request_timeout",
        )
    ).encode(),
)


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """The key check; also tells the inbound guard where each request starts and ends."""
    app = request.app
    inbound = app[_INBOUND]
    inbound.request_started(request.protocol)
    try:
        key = app.get(_API_KEY)
        if key is not None and request.path.startswith("/v1/") and not _key_matches(request, key):
            message = "missing or invalid API key (Authorization: Bearer <key>, or x-api-key)"
            if request.path.startswith("/v1/messages"):  # Anthropic's routes, Anthropic's shape
                error = {"type": "authentication_error", "message": message}
                return web.json_response({"type": "error", "error": error}, status=401)
            return web.json_response(
                _error_body(message, "invalid_request_error", "invalid_api_key"), status=401
            )
        response: web.StreamResponse = await handler(request)
        return response
    finally:
        inbound.request_finished(request.protocol)


def _key_matches(request: web.Request, key: bytes) -> bool:
    """``Authorization: Bearer <key>`` (OpenAI clients, Claude Code's ANTHROPIC_AUTH_TOKEN) or
    ``x-api-key`` (Claude Code's ANTHROPIC_API_KEY), compared in constant time.

    aiohttp keeps a header's non-UTF-8 bytes as surrogates; surrogateescape gives them back
    (and they never match), where a plain encode() raised: a 500 and a traceback per request,
    before any key was compared."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        sent = given.strip().encode("utf-8", "surrogateescape")
        if hmac.compare_digest(sent, key):
            return True
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        return hmac.compare_digest(api_key.strip().encode("utf-8", "surrogateescape"), key)
    return False


async def _read_json(request: web.Request) -> Any:
    """The body as JSON, read under the inbound limits; an error reply to send instead."""
    limits = request.app[_INBOUND].limits
    try:
        raw = await read_body(
            request.content,
            max_size=_MAX_BODY_BYTES,
            timeout_s=limits.body_timeout_s,
            gap_s=limits.body_gap_s,
        )
    except BodyTimeout as exc:
        close_soon(request.transport)  # answered; the rest of the body is not waited for
        response = web.json_response(
            _error_body(str(exc), "invalid_request_error", "request_timeout"), status=408
        )
        response.force_close()
        raise _Refused(response) from None
    except BodyTooLarge as exc:
        raise _Refused(
            web.json_response(
                _error_body(str(exc), "invalid_request_error", "request_too_large"), status=413
            )
        ) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise _Refused(_error_response(InvalidInput("body", "is not valid JSON"))) from None


class _Refused(Exception):
    """The request cannot be read: `response` says why."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        body = await _read_json(request)
    except _Refused as refused:
        return refused.response
    try:
        chat = parse_chat_request(body)
        if not chat.stream:
            completion, verdict = await service.complete_with_verdict(chat)
            return web.json_response({**completion, CACHE_VERDICT_FIELD: verdict})
    except HandlerError as exc:
        return _error_response(exc)
    except Exception:
        logger.exception("chat completion failed unexpectedly")
        return _internal_error()

    holder = StreamVerdict()
    return await relay_sse(request, service.stream(chat, verdict=holder), holder, _CHAT_SSE)


def _chat_error_event(exc: HandlerError | None) -> str:
    if exc is None:
        return sse_event(_error_body("internal error", "api_error", "internal_error"))
    return sse_event(_error_body(str(exc), exc.error_type, exc.code))


def _chat_refusal(exc: HandlerError | None) -> web.Response:
    return _internal_error() if exc is None else _error_response(exc)


_CHAT_SSE = SSEDialect(
    "chat stream",
    sse_event,
    _chat_error_event,
    _chat_refusal,
    first=lambda chunk, verdict: {**chunk, CACHE_VERDICT_FIELD: verdict},
    done=SSE_DONE,
)


async def _models(request: web.Request) -> web.Response:
    try:
        return web.json_response(await request.app[SERVICE].models())
    except HandlerError as exc:
        return _error_response(exc)


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    cache = "available" if service.store.available else "backoff"
    return web.json_response({"status": "ok", "cache": cache})


def build_app(
    service: ChatService,
    api_key: SecretStr | str | None = None,
    *,
    inbound: InboundLimits | None = None,
) -> web.Application:
    """The aiohttp application over ``service``; the caller owns (and closes) the service.

    `inbound`: the limits its guard enforces (`_serve` listens through it); the defaults when
    None."""
    app = web.Application(middlewares=[_auth], client_max_size=_MAX_BODY_BYTES)
    app[SERVICE] = service
    app[_INBOUND] = InboundGuard(
        inbound or InboundLimits(), log=logger, timeout_reply=_HEADER_TIMEOUT_REPLY
    )
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    if api_key:
        app[_API_KEY] = api_key.encode("utf-8", "surrogateescape")
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/ping", _ping)
    add_routes(app, _json_or_refusal, MessagesService(service, service.settings))
    return app


async def _ping(request: web.Request) -> web.Response:
    """RunPod's load balancer polls this: 200 is healthy (this app serves only once booted)."""
    return web.Response(status=200, text="ok")


async def _json_or_refusal(request: web.Request) -> Any:
    try:
        return await _read_json(request)
    except _Refused as refused:
        return refused.response


def run(
    host: str,
    port: int,
    settings: HandlerSettings,
    *,
    signals: StopSignals | None = None,
    drain_s: float = 30.0,
    inbound: InboundLimits | None = None,
    listeners: Listeners | None = None,
) -> None:
    """Serve the HTTP mode until a stop signal (blocking). The worker's boot calls this.

    `listeners`: sockets the boot bound already (and answered "starting" on while the model
    loaded, `ccrelay_worker.starting`); None: bind `host`:`port` now.

    Not ``web.run_app``: it installs its own signal handlers and, when it returns, restores the
    default ones, so a second SIGTERM during the shutdown would kill the worker before it stops
    Ollama. Here the worker's :class:`StopSignals` stays in charge: the first signal stops
    accepting and gives in-flight requests ``drain_s`` seconds; a second one ends them now.

    `inbound`: the inbound limits; None reads them from ``CCRELAY_HTTP_*`` in the environment.
    The open-file soft limit is raised to the hard limit first: each connection is a file.
    """
    if inbound is None:
        inbound = inbound_limits(os.environ)
    raised = raise_open_file_limit()
    if raised is not None:
        logger.info("open-file limit raised from %d to %d", *raised)
    logger.info(
        "HTTP mode on %s:%d (auth %s)", host, port, "on" if settings.worker_api_key else "off"
    )
    if signals is not None:
        asyncio.run(_serve(host, port, settings, signals, drain_s, inbound, listeners))
        return
    own = StopSignals()  # run on its own (not from the boot): it owns the signals meanwhile
    own.install()
    try:
        asyncio.run(_serve(host, port, settings, own, drain_s, inbound, listeners))
    finally:
        own.restore()


async def _serve(
    host: str,
    port: int,
    settings: HandlerSettings,
    signals: StopSignals,
    drain_s: float,
    inbound: InboundLimits | None = None,
    listeners: Listeners | None = None,
) -> None:
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal(_signum: int, first: bool) -> None:
        (stop if first else hurry).set()

    with signals.listen(asyncio.get_running_loop(), on_signal):
        service = ChatService(settings)  # created inside the server's event loop
        app = build_app(service, settings.worker_api_key, inbound=inbound)
        guard = app[_INBOUND]
        limits = guard.limits
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=drain_s,
            # aiohttp's idle timer (web_protocol.py: armed at connection_made and after each
            # reply, it closes a connection still waiting for a whole request) is a backstop.
            keepalive_timeout=limits.idle_timeout_s + limits.header_timeout_s,
        )
        await runner.setup()
        servers: list[asyncio.Server] = []
        try:
            server = runner.server
            assert server is not None  # set by setup()
            loop = asyncio.get_running_loop()
            # Not web.TCPSite: it listens with runner.server itself; the guard must wrap it.
            if listeners is None:
                servers.append(await loop.create_server(guard.wrap(server), host, port))
            else:
                for sock in listeners.sockets:
                    servers.append(await loop.create_server(guard.wrap(server), sock=sock))
            await stop.wait()
            for listening in servers:  # no new connections; open ones are the runner's to end
                listening.close()
            logger.info("stopping: no new requests; in-flight ones get up to %g s", drain_s)
            cleanup = asyncio.ensure_future(runner.cleanup())
            hurried = asyncio.ensure_future(hurry.wait())
            await asyncio.wait({cleanup, hurried}, return_when=asyncio.FIRST_COMPLETED)
            hurried.cancel()
            if not cleanup.done():
                logger.warning("ending the requests still in flight now")
                cleanup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cleanup
        finally:
            for listening in servers:
                listening.close()
            guard.close()
            await service.aclose()
