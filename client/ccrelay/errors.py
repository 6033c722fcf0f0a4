"""The one exception tree of the client package.

Retry and failover decide on these types, never on message strings. Every error that can
reach a user carries an Anthropic error type and an HTTP status, so the gateway can answer in
Anthropic's shape without a lookup table of its own. No message ever contains a secret: messages are built from
backend names, model ids, statuses and the provider's own error text (scrubbed of the key by the
backend before it is raised).

    CcrelayError
    ├── InvalidRequestError            400 invalid_request_error  (the caller's request is wrong)
    ├── UnknownBackendError            400 invalid_request_error  (a name not in config)
    ├── StatsSourceError               latency records cannot be read (client.latency.stats)
    └── BackendError                   (backend: str; something went wrong talking to a backend)
        ├── TransportError             retryable
        │   ├── BackendConnectError    connection refused / reset / DNS
        │   └── BackendTimeout         (also asyncio.TimeoutError)
        │       ├── ConnectTimeout
        │       ├── FirstByteTimeout
        │       ├── StreamStalled      no chunk for idle_s in the middle of a stream
        │       └── TotalTimeout
        ├── UpstreamStatusError        (status, retry_after) the provider answered with an error
        │   ├── UpstreamInvalidRequest 400
        │   │   └── UpstreamRequestTooLarge 413
        │   ├── UpstreamAuthError      401/403
        │   ├── UnknownModelError      404 for a model id; says how to list valid ones
        │   ├── UpstreamRateLimited    429, retryable, retry_after passed on
        │   ├── UpstreamOverloaded     503/529, retryable
        │   └── UpstreamServerError    other 5xx (and 408/409), retryable
        ├── ProtocolError              the provider answered garbage (non-JSON, truncated SSE)
        ├── StreamInterrupted          the stream broke after bytes were passed on: never retried
        ├── JobFailed                  a RunPod job ended FAILED / CANCELLED / TIMED_OUT
        ├── CircuitOpenError           the backend's breaker is open; failover moves on
        └── AllBackendsFailed          every backend of a failover chain failed (last error kept)
"""

from __future__ import annotations


class CcrelayError(Exception):
    """Root of every error the client package raises."""

    status: int = 500
    error_type: str = "api_error"
    retryable: bool = False
    attempts: int = 0
    """Tries made against backends before this error (0: none reached a backend)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(CcrelayError):
    status = 400
    error_type = "invalid_request_error"


class UnknownBackendError(CcrelayError):
    status = 400
    error_type = "invalid_request_error"

    def __init__(self, name: str, known: list[str], hint: str = "") -> None:
        listed = ", ".join(sorted(known)) or "(none configured)"
        note = f" ({hint})" if hint else ""
        super().__init__(f"unknown backend {name!r}; known backends: {listed}{note}")
        self.name = name
        self.known = sorted(known)


class BackendError(CcrelayError):
    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend


class TransportError(BackendError):
    status = 502
    error_type = "api_error"
    retryable = True


class BackendConnectError(TransportError):
    pass


class BackendTimeout(TransportError, TimeoutError):
    status = 504


class ConnectTimeout(BackendTimeout):
    pass


class FirstByteTimeout(BackendTimeout):
    pass


class StreamStalled(BackendTimeout):
    pass


class TotalTimeout(BackendTimeout):
    pass


class UpstreamStatusError(BackendError):
    """The provider answered with an HTTP error; ``status`` is what the gateway will answer."""

    def __init__(
        self,
        backend: str,
        message: str,
        *,
        upstream_status: int,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(backend, message)
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class UpstreamInvalidRequest(UpstreamStatusError):
    status = 400
    error_type = "invalid_request_error"


class UpstreamRequestTooLarge(UpstreamInvalidRequest):
    status = 413
    error_type = "request_too_large"


class UpstreamAuthError(UpstreamStatusError):
    status = 401
    error_type = "authentication_error"


class UnknownModelError(UpstreamStatusError):
    status = 404
    error_type = "not_found_error"


class UpstreamRateLimited(UpstreamStatusError):
    status = 429
    error_type = "rate_limit_error"
    retryable = True


class UpstreamOverloaded(UpstreamStatusError):
    status = 529
    error_type = "overloaded_error"
    retryable = True


class UpstreamServerError(UpstreamStatusError):
    status = 500
    error_type = "api_error"
    retryable = True


class ProtocolError(BackendError):
    status = 502
    error_type = "api_error"


class StreamInterrupted(BackendError):
    status = 502
    error_type = "api_error"


class JobFailed(BackendError):
    status = 502
    error_type = "api_error"


class CircuitOpenError(BackendError):
    status = 503
    error_type = "overloaded_error"


class AllBackendsFailed(CcrelayError):
    """Every backend in the chain failed; the last error decides the status the caller sees."""

    def __init__(self, errors: list[BackendError]) -> None:
        last = errors[-1]
        tried = ", ".join(e.backend for e in errors)
        super().__init__(f"all backends failed (tried {tried}); last: {last.message}")
        self.errors = errors
        self.attempts = sum(e.attempts for e in errors)
        self.status = last.status
        self.error_type = last.error_type
        self.retry_after = getattr(last, "retry_after", None)
