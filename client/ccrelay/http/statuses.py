"""Provider error replies -> the `ccrelay.errors` tree, by HTTP status and structured code.

Anthropic, OpenAI, Cerebras, vLLM, LiteLLM and RunPod (job API errors, and its REST API's
RFC 9457 problem documents: ``detail`` and ``errors``) put their error text in different places;
`provider_message` finds it, and `error_for_status` picks the error type from the status (and,
for a 400/404, from whether the provider says the *model* is what it does not know). The text
that goes into an error is scrubbed of the backend's secrets by the caller first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ccrelay.errors import (
    BackendError,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamInvalidRequest,
    UpstreamOverloaded,
    UpstreamPromptTooLong,
    UpstreamRateLimited,
    UpstreamRequestTooLarge,
    UpstreamServerError,
    UpstreamStatusError,
)

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "anthropic_error_type",
    "error_for_payload",
    "error_for_status",
    "provider_message",
    "status_of_error_type",
]

_MAX_MESSAGE = 500


ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""Anthropic's error types by HTTP status (its errors page); other 4xx are
``invalid_request_error`` and other 5xx ``api_error``. Read both ways: a status to the type the
gateway answers, and a type found in an upstream's stream back to its status."""


def anthropic_error_type(status: int) -> str:
    return ANTHROPIC_ERROR_TYPES.get(
        status, "invalid_request_error" if status < 500 else "api_error"
    )


def status_of_error_type(error_type: object) -> int | None:
    for status, name in ANTHROPIC_ERROR_TYPES.items():
        if name == error_type:
            return status
    return None


def provider_message(text: str) -> tuple[str, str | None, str | None]:
    """(message, code, param) from the error bodies of Anthropic, OpenAI, Cerebras and RunPod."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.strip()[:_MAX_MESSAGE] or "(empty body)", None, None
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, str):
            return inner[:_MAX_MESSAGE], None, None
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or str(inner)[:_MAX_MESSAGE]
            message = f"{message}{_problem_errors(inner)}"
            code = inner.get("code") or inner.get("type")
            param = inner.get("param")
            return str(message)[:_MAX_MESSAGE], _opt_str(code), _opt_str(param)
    return str(data)[:_MAX_MESSAGE], None, None


def _problem_errors(problem: dict[str, Any]) -> str:
    """An RFC 9457 problem document's ``errors`` list, where RunPod's REST API names each field
    it refused (``$.scaling: ...``); its ``detail`` alone says only "request validation failed"."""
    errors = problem.get("errors")
    if not isinstance(errors, list) or not errors:
        return ""
    return ": " + "; ".join(str(error) for error in errors[:5])


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def error_for_status(
    backend: str,
    status: int,
    text: str,
    *,
    retry_after: float | None = None,
    model: str | None = None,
    auth_fix: str = "check the backend's api_key",
    said_in: str | None = None,
) -> UpstreamStatusError:
    """`said_in`: where the error came, when not as an HTTP status (an event in a stream)."""
    message, code, param = provider_message(text)
    detail = f"{said_in or f'HTTP {status}'}: {message}"
    kwargs: dict[str, Any] = {"upstream_status": status, "retry_after": retry_after}
    model_problem = code in ("model_not_found", "not_found_error") or param == "model"
    if (status in (400, 404) and model_problem) or status == 404:
        asked = f"; model asked for: {model!r}" if model else ""
        return UnknownModelError(
            backend,
            f"{detail}{asked}; list valid models with `ccrelay models --backend {backend}` "
            "and set `model` (or the `models` map) in the config",
            **kwargs,
        )
    if status in (401, 403):
        return UpstreamAuthError(backend, f"{detail}; {auth_fix}", **kwargs)
    if status == 429:
        return UpstreamRateLimited(backend, detail, **kwargs)
    if status in (503, 529):
        return UpstreamOverloaded(backend, detail, **kwargs)
    if status >= 500 or status in (408, 409):
        return UpstreamServerError(backend, detail, **kwargs)
    if UpstreamPromptTooLong.said(message):  # Claude Code compacts on these exact words
        return UpstreamPromptTooLong(backend, message.strip(), **kwargs)
    if status == 413:
        return UpstreamRequestTooLarge(backend, detail, **kwargs)
    return UpstreamInvalidRequest(backend, detail, **kwargs)


def error_for_payload(
    backend: str,
    payload: Any,
    *,
    model: str | None = None,
    scrub: Callable[[str], str] | None = None,
) -> BackendError:
    """An error object that arrived inside a 200 stream (OpenAI and Anthropic both do this).

    Pass the backend's `UpstreamClient.scrub` (or call `UpstreamClient.payload_error`): the
    provider's text may echo the key.
    """
    status = 500
    if isinstance(payload, dict):
        code = payload.get("code") or payload.get("status")
        if isinstance(code, int) and 400 <= code < 600:
            status = code
        else:
            status = status_of_error_type(payload.get("type")) or status
    text = orjson.dumps({"error": payload}).decode()
    return error_for_status(
        backend,
        status,
        scrub(text) if scrub else text,
        model=model,
        said_in="an error event in its stream",
    )
