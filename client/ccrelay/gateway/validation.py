"""Light validation of a request body's top level; everything else passes through untouched.

Only what the gateway itself relies on is checked (``model``, ``messages``, ``max_tokens``,
``stream``). Every other field (``thinking: {"type": "adaptive"}``, ``context_management``,
``output_config``, ``metadata``, tools with ``defer_loading``, fields newer than this code) is
allowed: the backend decides what it keeps. The body is decoded once, with orjson, and the
decoded dict itself is what goes on; the models only check it.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccrelay.errors import InvalidRequestError


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class MessagesBody(_Body):
    model: str = Field(min_length=1)
    messages: list[Any] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    stream: bool | None = None


class CountTokensBody(_Body):
    model: str = Field(min_length=1)
    messages: list[Any] = Field(min_length=1)


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


def check(model: type[_Body], body: dict[str, Any]) -> None:
    """Raise `InvalidRequestError` naming each wrong field (never echoing a value)."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise InvalidRequestError("; ".join(problems)) from None
