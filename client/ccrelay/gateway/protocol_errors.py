"""Requests aiohttp refuses before any route runs, answered in Anthropic's error shape.

A request line or header past aiohttp's limits, or bytes that are not HTTP, never reach the
middleware: aiohttp's connection handler answers them itself, in plain text, and its message
(and log line) quote up to 100 bytes of the offending header, which may be a credential. This
handler answers them as Anthropic does (JSON, ``431`` for headers too large, ``400`` otherwise)
and logs one line that names the problem, never the bytes.

aiohttp offers no hook for this, so `AnthropicErrorRunner` makes its connection handler a
`_Handler` (aiohttp's own `RequestHandler`, with ``handle_error`` replaced). The private parts
used are `web.Server`'s ``_loop`` and ``_kwargs``, stable across aiohttp 3.x.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from ccrelay.gateway.errors import error_body

__all__ = ["AnthropicErrorRunner"]

log = logging.getLogger("ccrelay.gateway")


class _Handler(RequestHandler):
    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # a reply is under way: nothing more can be said
            raise ConnectionError("the reply had started; the connection is closed")
        if isinstance(exc, LineTooLong) or (
            isinstance(exc, BadHttpMessage) and "too long" in str(exc).lower()
        ):
            status, error_type = 431, "invalid_request_error"
            text = "a request line or header is larger than this gateway accepts (8 KB each)"
        elif status < 500:
            error_type = "invalid_request_error"
            text = "the request is not valid HTTP"
        else:
            status, error_type = 500, "api_error"
            text = "internal error in the ccrelay gateway (see its log)"
        # One line naming the problem: aiohttp's own text quotes the header, which may be a key.
        log.warning("refused a request before routing: HTTP %d (%s)", status, text)
        response = web.Response(
            status=status, body=error_body(error_type, text), content_type="application/json"
        )
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class AnthropicErrorRunner(web.AppRunner):
    """`web.AppRunner` whose connections answer protocol-level errors in Anthropic's shape."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same layout, one method more
        return server
