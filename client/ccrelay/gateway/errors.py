"""Errors as Anthropic's API answers them: ``{"type": "error", "error": {"type", "message"}}``.

Every `CcrelayError` already carries its HTTP status and Anthropic error type (see
`ccrelay.errors`), so rendering one needs no lookup table. aiohttp's own HTTP exceptions (an
unknown route, a wrong method, a body over the size limit) are mapped here to the same shape.
Anything else is a bug: it is logged, scrubbed of secrets, and answered with a generic 500
``api_error`` that names the request id and nothing else.

A reply never holds a stack trace or a secret: messages come from the error tree, whose
messages are built without secrets, and provider text is scrubbed by the backend before it is
raised.
"""

from __future__ import annotations

import logging
import math
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from ccrelay.errors import (
    AllBackendsFailed,
    BackendError,
    CcrelayError,
    GatewayShuttingDown,
    StreamInterrupted,
)
from ccrelay.http.statuses import anthropic_error_type

log = logging.getLogger("ccrelay.gateway")


def error_body(error_type: str, message: str, request_id: str = "") -> bytes:
    payload: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        payload["request_id"] = request_id
    return orjson.dumps(payload)


def error_response(
    status: int,
    error_type: str,
    message: str,
    request_id: str = "",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    merged = {"request-id": request_id} if request_id else {}
    if headers:
        merged.update(headers)
    return web.Response(
        status=status,
        body=error_body(error_type, message, request_id),
        content_type="application/json",
        headers=merged,
    )


def retry_after_of(exc: CcrelayError) -> float | None:
    value = exc.retry_after
    return value if value is not None and value >= 0 else None


HONOURS_SHOULD_RETRY_ON_529 = (2, 1, 332)
"""The first Claude Code known to drop a 529 that says ``x-should-retry: false``: 2.1.332 sent
one request for it where 2.1.197 sent three (its retry predicate reads ``overloaded_error``
before the header). Versions in between were not measured, so they get the older answer."""
_CLAUDE_CLI = re.compile(r"\bclaude-cli/(\d+)\.(\d+)\.(\d+)")


def claude_cli_version(user_agent: str | None) -> tuple[int, int, int] | None:
    """Claude Code's version from its User-Agent (``claude-cli/2.1.332 (external, cli)``)."""
    found = _CLAUDE_CLI.search(user_agent or "")
    if found is None:
        return None
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch)


def honours_should_retry_on_overload(user_agent: str | None) -> bool:
    version = claude_cli_version(user_agent)
    return version is not None and version >= HONOURS_SHOULD_RETRY_ON_529


def reply_status(
    exc: CcrelayError | type[CcrelayError], user_agent: str | None = None
) -> tuple[int, str]:
    """The status and Anthropic error type a final error reply carries.

    An overload the gateway has already retried is answered 529 ``overloaded_error`` (what it
    is) only to a client known to honour ``x-should-retry: false`` on it (Claude Code 2.1.332
    and later, by its User-Agent). Older Claude Code retries any 529 or
    ``"type":"overloaded_error"`` reply *before* it reads the header (2.1.197: three requests
    where 2.1.332 sends one), which multiplied the gateway's attempts in
    tests/client/gateway/test_claude_code_limits.py; it and unknown clients get 503
    ``api_error``, which they do not retry. The message still names the upstream status. A
    draining gateway keeps 529: a restarted one can serve the retry.
    """
    kind = exc if isinstance(exc, type) else type(exc)
    if exc.error_type == "overloaded_error" and not issubclass(kind, GatewayShuttingDown):
        if honours_should_retry_on_overload(user_agent):
            return 529, "overloaded_error"
        return 503, "api_error"
    return exc.status, exc.error_type


def ccrelay_error_response(
    exc: CcrelayError, request_id: str, *, user_agent: str | None = None
) -> web.Response:
    """A `CcrelayError` with its own status and type (`reply_status`: `user_agent` is the
    client's, for the overload answer); Retry-After passed on when known.

    ``x-should-retry: false``: the gateway has spent its own retries and failover, and Claude
    Code honours the header; without it Claude Code retries about ten times more, multiplying
    the gateway's attempts (measured: 28 upstream requests and 193 s for one prompt).
    """
    headers: dict[str, str] = {"x-should-retry": "false"}
    retry_after = retry_after_of(exc)
    if retry_after is not None:
        headers["retry-after"] = str(math.ceil(retry_after))
        headers["retry-after-ms"] = str(math.ceil(retry_after * 1000))
    if isinstance(exc, BackendError):
        headers["x-ccrelay-backend"] = exc.backend
    elif isinstance(exc, AllBackendsFailed):
        headers["x-ccrelay-backend"] = exc.errors[-1].backend
        headers["x-ccrelay-failovers"] = str(len(exc.errors) - 1)
    if exc.attempts:
        headers["x-ccrelay-attempts"] = str(exc.attempts)
    status, error_type = reply_status(exc, user_agent)
    return error_response(status, error_type, exc.message, request_id, headers)


def http_exception_response(
    exc: web.HTTPException, request: web.Request, request_id: str, *, max_body: int
) -> web.Response:
    """aiohttp's 404 / 405 / 413 / ... in Anthropic's shape."""
    status = exc.status
    error_type = anthropic_error_type(status)
    if status == 404:
        message = f"Not found: {request.method} {request.path}"
    elif status == 405:
        message = f"Method not allowed: {request.method} {request.path}"
    elif status == 413:
        message = f"Request exceeds the maximum size of {max_body // (1024 * 1024)} MB"
    else:
        message = exc.reason
    headers = {}
    allow = exc.headers.get("Allow")
    if allow:
        headers["Allow"] = allow
    return error_response(status, error_type, message, request_id, headers)


def stream_error_event(exc: BaseException) -> bytes:
    """The SSE ``error`` event that ends a stream which broke after it started."""
    if isinstance(exc, CcrelayError):
        error_type = exc.error_type
        cause = exc.__cause__
        if isinstance(exc, StreamInterrupted) and isinstance(cause, CcrelayError):
            error_type = cause.error_type  # overloaded_error tells a client more than api_error
        body = error_body(error_type, exc.message)
    else:
        body = error_body("api_error", "internal error in the ccrelay gateway")
    return b"event: error\ndata: " + body + b"\n\n"


class Scrubber:
    """Removes known secret values from text bound for a log."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def log_unexpected(exc: BaseException, what: str, request_id: str, scrub: Scrubber) -> None:
    """Log a bug with its traceback, scrubbed of every configured secret."""
    detail = scrub("".join(traceback.format_exception(exc)))
    log.error("unexpected error in %s (request_id=%s)\n%s", what, request_id, detail.rstrip())
