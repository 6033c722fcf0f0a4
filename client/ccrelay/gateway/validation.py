"""Light validation of a request body's top level; everything else passes through untouched.

Only what the gateway itself relies on is checked (``model``, ``messages``, ``max_tokens``,
``stream``). Every other field (``thinking: {"type": "adaptive"}``, ``context_management``,
``output_config``, ``metadata``, tools with ``defer_loading``, fields newer than this code) is
allowed: the backend decides what it keeps. The body is decoded once, with orjson, and the
decoded dict itself is what goes on.

The check is four ``isinstance`` tests, not a pydantic model: it runs on every Claude Code
request, and a model validating (and copying) a 50 KB body only to throw it away cost more
than the translation (issue 15). Strict as the model was: ``"5"`` and ``true`` are not a
``max_tokens``; every wrong field is named at once, and no value is echoed.

A refusal written elsewhere (the translation names the field and may quote its value) passes
through `refusal_text` on its way out, so no caller's value comes back in full: a 100 KB
``role`` once made a 100 KB error message.

The body is read by `read_body`, under the ``gateway.inbound`` deadlines (the whole body, and
the longest pause inside it), in place of aiohttp's ``request.read()``, which has neither.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from aiohttp import web

from ccrelay.errors import InvalidRequestError
from ccrelay_config.models import InboundSettings
from ccrelay_wire.inbound import BodyTooLarge
from ccrelay_wire.inbound import read_body as _read_within

Endpoint = Literal["messages", "count_tokens"]

MAX_REFUSAL_CHARS = 1000
"""The longest refusal message the gateway sends. The translation quotes at most 40 characters
of a value; this bounds what any other part (or a future message) could echo."""


async def read_body(request: web.Request, *, max_body: int, limits: InboundSettings) -> bytes:
    """The request's body within ``limits``; past ``max_body`` a 413 as aiohttp gives it.

    Raises ``ccrelay_wire.inbound.BodyTimeout`` when the body is too slow: the middleware
    answers 408 and closes the connection."""
    try:
        return await _read_within(
            request.content,
            max_size=max_body,
            timeout_s=limits.body_timeout_s,
            gap_s=limits.body_gap_s,
        )
    except BodyTooLarge as exc:
        raise web.HTTPRequestEntityTooLarge(max_size=exc.limit, actual_size=exc.size) from None


def refusal_text(message: str) -> str:
    """`message`, cut to `MAX_REFUSAL_CHARS` with an ellipsis."""
    if len(message) <= MAX_REFUSAL_CHARS:
        return message
    return message[: MAX_REFUSAL_CHARS - 1] + "\u2026"


def decode_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequestError("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return body


def check(endpoint: Endpoint, body: dict[str, Any]) -> None:
    """Raise `InvalidRequestError` naming each wrong field (never echoing a value)."""
    problems = []
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.append(
            "model: is required, a non-empty string"
            if model is None
            else "model: must be a non-empty string"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append(
            "messages: is required, a list of at least one message"
            if messages is None
            else "messages: must be a list of at least one message"
        )
    if endpoint == "messages":
        max_tokens = body.get("max_tokens")
        if type(max_tokens) is not int or max_tokens < 1:
            problems.append(
                "max_tokens: is required, a whole number of at least 1"
                if max_tokens is None
                else "max_tokens: must be a whole number of at least 1"
            )
        stream = body.get("stream")
        if stream is not None and type(stream) is not bool:
            problems.append("stream: must be true or false")
    if problems:
        raise InvalidRequestError("; ".join(problems))
