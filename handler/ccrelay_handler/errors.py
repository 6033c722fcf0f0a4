"""The handler's exception tree.

::

    HandlerError                      base of every error the handler raises on purpose
    ├── SettingsError (ValueError)    the environment does not make valid HandlerSettings
    ├── InvalidInput (ValueError)     the job / HTTP request body is not a valid request; names the field
    │   ├── ModelNotAllowed           the request names a model outside the allowlist
    │   └── PromptTooLong             the prompt does not fit the window (ours or the engine's)
    ├── EngineError                   Ollama answered with an error; carries Ollama's own message
    │   ├── EngineUnavailable (ConnectionError)   Ollama could not be reached
    │   └── EngineTimeout (TimeoutError)          Ollama did not answer within the engine timeouts
    └── CacheUnavailable (ConnectionError)        Redis is down, slow, or in its back-off window

``CacheUnavailable`` never reaches a client: the service catches it and serves uncached.
Every other leaf becomes a job error string (``{"error": str(exc)}``) in RunPod mode and an
OpenAI error object in HTTP mode; ``http_status``, ``error_type`` and ``code`` drive that
mapping, so callers branch on types and attributes, never on message text.
"""

from __future__ import annotations

from ccrelay_wire.job_error import (
    CODE_INVALID_INPUT,
    CODE_MODEL_NOT_ALLOWED,
    CODE_PROMPT_TOO_LONG,
    prompt_too_long,
)

__all__ = [
    "CacheUnavailable",
    "EngineError",
    "EngineTimeout",
    "EngineUnavailable",
    "HandlerError",
    "InvalidInput",
    "ModelNotAllowed",
    "PromptTooLong",
    "SettingsError",
]


class HandlerError(Exception):
    """Base of the tree; ``str(exc)`` is safe to show a client (no secrets, no traceback)."""

    http_status: int = 500
    error_type: str = "api_error"
    code: str = "handler_error"


class SettingsError(HandlerError, ValueError):
    """The environment does not describe valid handler settings."""

    code = "settings_error"


class InvalidInput(HandlerError, ValueError):
    """The request is not a valid OpenAI chat-completions request; ``field`` names where."""

    http_status = 400
    error_type = "invalid_request_error"
    code = CODE_INVALID_INPUT

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid input: {field}: {problem}")


class ModelNotAllowed(InvalidInput):
    """The request names a model this worker does not serve (it never pulls arbitrary models)."""

    code = CODE_MODEL_NOT_ALLOWED

    def __init__(self, model: str, allowed: tuple[str, ...]) -> None:
        self.model = model
        self.allowed = allowed
        super().__init__(
            "model",
            f"model {model!r} is not allowed on this worker (allowed: {', '.join(allowed)})",
        )


class PromptTooLong(InvalidInput):
    r"""The prompt does not fit the worker's context window. The message is the one Claude Code
    compacts on (its regex: ``prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)``); the
    prompt is never sent to be truncated."""

    code = CODE_PROMPT_TOO_LONG

    def __init__(self, tokens: int, maximum: int) -> None:
        HandlerError.__init__(self, prompt_too_long(tokens, maximum))
        self.field = "messages"
        self.problem = str(self)
        self.tokens = tokens
        self.maximum = maximum


class EngineError(HandlerError):
    """Ollama answered with an error status; ``message`` is Ollama's own text."""

    http_status = 502
    code = "engine_error"

    def __init__(self, message: str, status: int | None = None) -> None:
        self.message = message
        self.status = status
        prefix = f"engine error (HTTP {status})" if status is not None else "engine error"
        super().__init__(f"{prefix}: {message}")


class EngineUnavailable(EngineError, ConnectionError):
    """Ollama could not be reached (connection refused, reset, DNS)."""

    http_status = 503
    code = "engine_unavailable"


class EngineTimeout(EngineError, TimeoutError):
    """Ollama did not connect or send bytes within the configured engine timeouts."""

    http_status = 504
    code = "engine_timeout"


class CacheUnavailable(HandlerError, ConnectionError):
    """Redis is unreachable, too slow, or the store is inside its back-off window after a failure."""

    http_status = 503
    code = "cache_unavailable"
