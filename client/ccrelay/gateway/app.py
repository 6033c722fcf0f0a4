"""The gateway application, and a small server wrapper the CLI commands, tests and bench share.

`build_app(runtime, auth_token=...)` wires the routes behind one middleware that gives every
request its ``request-id``, checks the token when auth is on (everywhere but ``/``, which says
nothing but "ccrelay"), renders every error in Anthropic's
shape, and logs one line per request (method, path, status, backend, duration; never a body, a
header value or a secret).

`GatewayServer` runs an app on a host and port (port 0 picks a free one) with handler
cancellation on, so a caller that disconnects cancels its request and closes the upstream
stream it was reading. It listens through the app's `InboundGuard` (``ccrelay_wire.inbound``),
with the config's ``gateway.inbound`` limits: a caller gets a deadline for its headers, its
body and its idle time, and callers that never finish their headers cannot crowd out the rest,
token or no token (the token is checked only once the headers are in).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ccrelay.errors import CcrelayError, GatewayShuttingDown, InvalidRequestError
from ccrelay.gateway import routes
from ccrelay.gateway.auth import TOKEN_HEADER, TokenCheck, check_bind
from ccrelay.gateway.errors import (
    Scrubber,
    ccrelay_error_response,
    error_body,
    error_response,
    http_exception_response,
    log_unexpected,
)
from ccrelay.gateway.memory import IdleTrim
from ccrelay.gateway.protocol_errors import AnthropicErrorRunner
from ccrelay.gateway.routes import OUTCOME, REQUEST_ID, STATE, GatewayState
from ccrelay.gateway.validation import refusal_text
from ccrelay.runtime import Runtime
from ccrelay_wire.inbound import BodyTimeout, InboundGuard, InboundLimits, close_soon, http_reply

log = logging.getLogger("ccrelay.gateway")

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Anthropic's own limit for the Messages and token-counting endpoints."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

INBOUND = web.AppKey("ccrelay_inbound", InboundGuard)
"""The guard the app's server listens through; the middleware tells it where requests begin
and end, so a kept-alive connection is watched again once its reply is done."""


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    app = request.app
    state = app[STATE]
    inbound = app[INBOUND]
    inbound.request_started(request.protocol)
    task = state.drain.enter()
    try:
        if state.drain.stopping:
            response: web.StreamResponse = _shutting_down(request_id)
        elif state.auth is not None and request.path != "/" and not state.auth(request.headers):
            response = _unauthorized(request, request_id)
        else:
            response = await handler(request)
    except asyncio.CancelledError as exc:
        if not state.drain.cut_by(exc):
            raise  # the caller went away
        if task is not None:
            task.uncancel()
        response = _shutting_down(request_id)
    except CcrelayError as exc:
        if isinstance(exc, InvalidRequestError):
            exc.message = refusal_text(exc.message)  # a huge value must not come back in full
        response = ccrelay_error_response(
            exc, request_id, user_agent=request.headers.get("User-Agent")
        )
    except BodyTimeout as exc:
        # Answer, then close: aiohttp would otherwise linger for the rest of the body.
        response = error_response(408, "invalid_request_error", str(exc), request_id)
        response.force_close()
        close_soon(request.transport)
    except web.HTTPException as exc:
        response = http_exception_response(exc, request, request_id, max_body=state.max_body)
    except Exception as exc:
        log_unexpected(exc, f"{request.method} {request.path}", request_id, state.scrub)
        response = error_response(
            500,
            "api_error",
            f"internal error in the ccrelay gateway (request_id={request_id}; see its log)",
            request_id,
        )
    finally:
        inbound.request_finished(request.protocol)
        state.drain.leave(task)
        if state.trim is not None:
            state.trim.request_done()
    if log.isEnabledFor(logging.INFO):
        headers = response.headers
        log.info(
            "%s %s %d backend=%s route=%s attempts=%s failovers=%s class=%s%s%s ms=%.1f "
            "request_id=%s",
            request.method,
            request.path,
            response.status,
            headers.get("x-ccrelay-backend", "-"),
            headers.get("x-ccrelay-route", "-"),
            headers.get("x-ccrelay-attempts", "-"),
            headers.get("x-ccrelay-failovers", "-"),
            routes.hint_header(request.headers.get("x-claude-code-request-class")) or "-",
            " hedged" if "x-ccrelay-hedged" in headers else "",
            f" stream={request[OUTCOME]}" if OUTCOME in request else "",
            (time.perf_counter() - started) * 1000,
            request_id,
        )
    return response


def _shutting_down(request_id: str) -> web.Response:
    response = ccrelay_error_response(
        GatewayShuttingDown("the ccrelay gateway is shutting down; retry in a moment"),
        request_id,
    )
    response.headers["x-should-retry"] = "true"  # a restarted gateway can serve it
    response.force_close()
    return response


def _unauthorized(request: web.Request, request_id: str) -> web.Response:
    headers = request.headers
    sent = TOKEN_HEADER in headers or "x-api-key" in headers or "authorization" in headers
    message = (
        "this gateway's token (CCRELAY_AUTH_TOKEN) does not match what the request sent "
        f"({TOKEN_HEADER}, x-api-key or Authorization)"
        if sent
        else f"this gateway needs its token (CCRELAY_AUTH_TOKEN) as {TOKEN_HEADER}, x-api-key "
        "or 'Authorization: Bearer ...'"
    )
    return error_response(401, "authentication_error", message, request_id)


_HEADER_TIMEOUT_REPLY = http_reply(
    408,
    "Request Timeout",
    error_body(
        "invalid_request_error", "the request's headers did not arrive in time; send them again"
    ),
)


def build_app(
    runtime: Runtime, *, auth_token: str | None = None, max_body: int = MAX_BODY_BYTES
) -> web.Application:
    """The gateway for `runtime`'s backends; with `auth_token`, every request must carry it."""
    secrets = [
        settings.api_key.get_secret_value()
        for settings in runtime.config.backends.values()
        if settings.api_key is not None
    ]
    if auth_token:
        secrets.append(auth_token)
    catalog = routes.model_catalog(runtime.config)
    app = web.Application(client_max_size=max_body, middlewares=[_guard])
    app[STATE] = GatewayState(
        runtime=runtime,
        auth=TokenCheck(auth_token) if auth_token else None,
        scrub=Scrubber(secrets),
        max_body=max_body,
        models=catalog,
        models_body=routes.models_page(catalog),
    )
    app[INBOUND] = InboundGuard(
        InboundLimits(**runtime.config.gateway.inbound.model_dump()),
        log=log,
        timeout_reply=_HEADER_TIMEOUT_REPLY,
    )
    state = app[STATE]
    state.trim = IdleTrim(lambda: state.drain.in_flight)

    async def stop_trimming(_app: web.Application) -> None:
        if state.trim is not None:
            state.trim.cancel()
        _app[INBOUND].close()

    app.on_cleanup.append(stop_trimming)
    app.router.add_post("/v1/messages", routes.messages)
    app.router.add_post("/v1/messages/count_tokens", routes.count_tokens)
    app.router.add_get("/v1/models", routes.list_models)
    app.router.add_get("/v1/models/{model_id}", routes.get_model)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/", routes.root)  # also HEAD: Claude Code's connection warm-up
    return app


class GatewayServer:
    """An app listening on host:port. ``await start()``, then ``url``; ``await close()``."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> GatewayServer:
        guard = self.app[INBOUND]
        limits = guard.limits
        runner = AnthropicErrorRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=5.0,
            # aiohttp's own idle timer (web_protocol.py: armed at connection_made and after
            # each reply, it closes a connection still waiting for a complete request) stays
            # as a backstop behind the guard's: idle, then headers, at the longest.
            keepalive_timeout=limits.idle_timeout_s + limits.header_timeout_s,
        )
        await runner.setup()
        server = runner.server
        assert server is not None  # set by setup()
        try:
            # Not web.TCPSite: it listens with runner.server itself, and the guard must wrap it.
            self._listener = await asyncio.get_running_loop().create_server(
                guard.wrap(server), self.host, self.port
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        sockets = self._listener.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # open connections stay: the runner's cleanup ends them

    async def drain(self, drain_s: float) -> int:
        """Stop listening, let in-flight requests finish for `drain_s`, end the rest (see
        `ccrelay.gateway.drain`), then close. Returns how many requests had to be ended."""
        self._stop_listening()
        state = self.app.get(STATE)
        ended = await state.drain.run(drain_s) if state is not None else 0
        await self.close()
        return ended

    async def close(self) -> None:
        self._stop_listening()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> GatewayServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_gateway(
    runtime: Runtime, *, host: str = "127.0.0.1", port: int = 0, auth_token: str | None = None
) -> GatewayServer:
    """Check the bind rule, build the app and start listening."""
    check_bind(host, auth_token)
    return await GatewayServer(build_app(runtime, auth_token=auth_token), host, port).start()


__all__ = [
    "INBOUND",
    "MAX_BODY_BYTES",
    "GatewayServer",
    "build_app",
    "new_request_id",
    "start_gateway",
]
