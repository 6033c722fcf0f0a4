"""The one exception tree of the client package.

Every property a decision needs is a property of the exception *type*, read by retry, the
circuit breaker, failover, ``count_tokens`` and the latency records alike, never a message:

- ``status`` / ``error_type``: what the gateway answers (Anthropic's shape);
- ``retryable``: may the same backend be tried again (nothing has reached the caller yet);
- ``fault``: whose fault it is (`Fault`). A caller fault (an invalid request, a model the
  backend does not serve, a request too large) never counts against a backend's health and is
  never failed over: another backend would refuse it too;
- ``outcome``: the word a latency record and the access log use for how an attempt ended.

No message ever contains a secret: messages are built from backend names, model ids, statuses
and the provider's own error text (scrubbed of the key before it is raised).

    CcrelayError                              fault      outcome
    ├── InvalidRequestError       400         caller     invalid_request
    │   ├── PromptTooLong         400         caller     prompt_too_long  no backend's window fits it
    │   └── RequestTooLarge       413         caller     request_too_large  over a backend's size limit
    ├── UnknownBackendError       400         caller     unknown_backend
    ├── GatewayShuttingDown       529         gateway    shutdown
    ├── StatsSourceError                      (latency records cannot be read; ccrelay.latency.reading)
    └── BackendError              (backend: str; something went wrong talking to a backend)
        ├── TransportError        502         backend    retryable
        │   ├── BackendConnectError           backend    connect_failed   refused / DNS / TLS: nothing sent
        │   ├── ConnectionLost                backend    connection_lost  reset or closed after sending
        │   │   └── ReplyCutOff               backend    reply_cut_off    the body broke off mid-read
        │   ├── BackendTimeout    504         backend    (also TimeoutError)
        │   │   ├── ConnectTimeout                       connect_timeout
        │   │   ├── FirstByteTimeout                     first_byte_timeout   headers, or an error body
        │   │   ├── StreamStalled                        stalled          no bytes for idle_s
        │   │   └── TotalTimeout                         total_timeout
        │   └── SubmitUncertain   504         backend    submit_uncertain NOT retryable: a job may exist
        ├── UpstreamStatusError   (upstream_status, retry_after) the provider answered an error
        │   ├── UpstreamInvalidRequest 400    caller     invalid_request
        │   │   ├── UpstreamPromptTooLong     caller     prompt_too_long  relayed unprefixed
        │   │   └── UpstreamRequestTooLarge 413 caller   request_too_large
        │   ├── UpstreamAuthError 401         config     auth_failed      our key is wrong
        │   ├── UnknownModelError 404         caller     unknown_model
        │   ├── UpstreamRateLimited 429       backend    rate_limited     retryable
        │   ├── UpstreamOverloaded 529        backend    overloaded       retryable
        │   ├── NoWorkerReady     503         backend    no_worker        (a load balancer's wait)
        │   ├── PinnedWorkerUnavailable 503   backend    pinned_worker_gone
        │   └── UpstreamServerError 502       backend    server_error     retryable
        ├── ProtocolError         502         backend    protocol_error   garbage: non-JSON, truncated
        │   └── ReplyTooLarge                 backend    reply_too_large  past the reply/event limit
        ├── StreamInterrupted     502         backend    stream_interrupted   after bytes went out
        ├── JobFailed             502         backend    job_failed       a RunPod job ended badly
        │   ├── JobTimeout                    backend    job_timeout      a job ran past a limit
        │   └── JobStalled                    backend    job_stalled      no output for idle_s
        ├── CircuitOpenError      503         backend    circuit_open     skipped, never sent
        └── AllBackendsFailed     (a refused key's status, type and fault; else the last error's)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import ClassVar

from ccrelay_translate.errors import InvalidRequest, MalformedReply, TranslationError
from ccrelay_wire.job_error import PROMPT_TOO_LONG, prompt_too_long


class Fault(StrEnum):
    """Whose fault a failure is; decides the breaker and failover."""

    CALLER = "caller"
    """The request itself is wrong: no backend would take it; health is not affected."""
    BACKEND = "backend"
    """The backend failed: counts against its circuit; the next backend is tried."""
    CONFIG = "config"
    """Our configuration is wrong for this backend (its key): counts, and failover helps."""
    GATEWAY = "gateway"
    """ccrelay itself (shutting down): says nothing about any backend."""


class CcrelayError(Exception):
    """Root of every error the client package raises."""

    status: int = 500
    error_type: str = "api_error"
    retryable: ClassVar[bool] = False
    fault: Fault = Fault.GATEWAY
    outcome: str = "error"
    attempts: int = 0
    """Tries made against backends before this error (0: none reached a backend)."""
    backend: str = ""
    """The backend it concerns ("" when none: the request itself, the gateway)."""
    upstream_status: int | None = None
    """The HTTP status the backend answered, when it answered one."""
    retry_after: float | None = None
    """Seconds the backend asked us to wait before trying again (Retry-After)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def counts_against_backend(self) -> bool:
        return self.fault in (Fault.BACKEND, Fault.CONFIG)


class InvalidRequestError(CcrelayError):
    status = 400
    error_type = "invalid_request_error"
    fault = Fault.CALLER
    outcome = "invalid_request"


class RequestTooLarge(InvalidRequestError):
    """Larger than a backend can be sent (RunPod's load balancer: 30 MB), refused here."""

    status = 413
    error_type = "request_too_large"
    outcome = "request_too_large"


class PromptTooLong(InvalidRequestError):
    """No backend in the chain has a context window the prompt fits. The message is the one
    Claude Code compacts on (its regex: ``prompt is too long[^0-9]*(\\d+)\\s*tokens?\\s*>\\s*(\\d+)``)."""

    outcome = "prompt_too_long"

    def __init__(self, tokens: int, maximum: int) -> None:
        super().__init__(prompt_too_long(tokens, maximum))
        self.tokens = tokens
        self.maximum = maximum


class UnknownBackendError(CcrelayError):
    status = 400
    error_type = "invalid_request_error"
    fault = Fault.CALLER
    outcome = "unknown_backend"

    def __init__(self, name: str, known: list[str], hint: str = "") -> None:
        listed = ", ".join(sorted(known)) or "(none configured)"
        note = f" ({hint})" if hint else ""
        super().__init__(f"unknown backend {name!r}; known backends: {listed}{note}")
        self.name = name
        self.known = sorted(known)


class GatewayShuttingDown(CcrelayError):
    """The gateway is draining: the request (or the rest of a stream) is not served."""

    status = 529
    error_type = "overloaded_error"
    outcome = "shutdown"


class BackendError(CcrelayError):
    fault = Fault.BACKEND

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend


class TransportError(BackendError):
    status = 502
    error_type = "api_error"
    retryable = True
    outcome = "transport_error"


class BackendConnectError(TransportError):
    """No connection could be made (refused, DNS, TLS): the request never left."""

    outcome = "connect_failed"


class ConnectionLost(TransportError):
    """The connection broke after the request went out (reset, closed before the reply)."""

    outcome = "connection_lost"


class ReplyCutOff(ConnectionLost):
    """The connection broke while the reply was read: nothing reached the caller, so retry."""

    outcome = "reply_cut_off"


class BackendTimeout(TransportError, TimeoutError):
    status = 504
    outcome = "timeout"


class ConnectTimeout(BackendTimeout):
    outcome = "connect_timeout"


class FirstByteTimeout(BackendTimeout):
    outcome = "first_byte_timeout"


class StreamStalled(BackendTimeout):
    outcome = "stalled"


class TotalTimeout(BackendTimeout):
    outcome = "total_timeout"


class SubmitUncertain(TransportError):
    """Submitting a RunPod job timed out or lost its connection after the request went out:
    the job may exist, and a retry could run the inference twice."""

    status = 504
    retryable = False
    outcome = "submit_uncertain"


class UpstreamStatusError(BackendError):
    """The provider answered with an HTTP error; ``status`` is what the gateway will answer."""

    outcome = "http_error"
    upstream_status: int

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
    fault = Fault.CALLER
    outcome = "invalid_request"


class UpstreamPromptTooLong(UpstreamInvalidRequest):
    """The backend's own ``prompt is too long: N tokens > M maximum`` (Anthropic's words, which
    the ccrelay worker uses too). Relayed as it came, without the backend's name in front:
    Claude Code 2.1.332 compacts on it only when the whole message matches
    `ccrelay_wire.PROMPT_TOO_LONG`."""

    outcome = "prompt_too_long"

    def __init__(
        self,
        backend: str,
        message: str,
        *,
        upstream_status: int = 400,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(backend, message, upstream_status=upstream_status, retry_after=retry_after)
        self.message = message

    @staticmethod
    def said(message: str) -> bool:
        return PROMPT_TOO_LONG.fullmatch(message.strip()) is not None


class UpstreamRequestTooLarge(UpstreamInvalidRequest):
    status = 413
    error_type = "request_too_large"
    outcome = "request_too_large"


class UpstreamAuthError(UpstreamStatusError):
    status = 401
    error_type = "authentication_error"
    fault = Fault.CONFIG
    outcome = "auth_failed"


class UnknownModelError(UpstreamStatusError):
    status = 404
    error_type = "not_found_error"
    fault = Fault.CALLER
    outcome = "unknown_model"


class UpstreamRateLimited(UpstreamStatusError):
    status = 429
    error_type = "rate_limit_error"
    retryable = True
    outcome = "rate_limited"


class UpstreamOverloaded(UpstreamStatusError):
    status = 529
    error_type = "overloaded_error"
    retryable = True
    outcome = "overloaded"


class NoWorkerReady(UpstreamStatusError):
    """A load-balanced endpoint had no worker to take the request (RunPod answers "no workers
    available" while workers start): the backend asks again until its cold-start limit."""

    status = 503
    error_type = "overloaded_error"
    outcome = "no_worker"


class PinnedWorkerUnavailable(UpstreamStatusError):
    """The worker a session was pinned to is gone, or stayed busy past RunPod's wait: the
    backend drops the pin and asks again without it."""

    status = 503
    error_type = "overloaded_error"
    outcome = "pinned_worker_gone"


class UpstreamServerError(UpstreamStatusError):
    """The provider failed (5xx, 408, 409): a 502, so a caller tells an upstream's failure
    from a bug of the gateway's own (500)."""

    status = 502
    error_type = "api_error"
    retryable = True
    outcome = "server_error"


class ProtocolError(BackendError):
    status = 502
    error_type = "api_error"
    outcome = "protocol_error"


class ReplyTooLarge(ProtocolError):
    """A reply body, or one streamed event, is larger than the backend's limit."""

    outcome = "reply_too_large"


class StreamInterrupted(BackendError):
    status = 502
    error_type = "api_error"
    outcome = "stream_interrupted"


class JobFailed(BackendError):
    status = 502
    error_type = "api_error"
    outcome = "job_failed"


class JobTimeout(JobFailed):
    """A RunPod job ran past a limit and was cancelled (never resubmitted)."""

    status = 504
    outcome = "job_timeout"


class JobStalled(JobFailed):
    """A streamed RunPod job produced no output for too long and was cancelled."""

    status = 504
    outcome = "job_stalled"


class CircuitOpenError(BackendError):
    status = 503
    error_type = "overloaded_error"
    outcome = "circuit_open"


class AllBackendsFailed(CcrelayError):
    """Every backend in the chain failed.

    The message leads with the first backend's failure and its fix (the backend the user chose,
    whose failure is most often the one to act on: a refused key), then the last one's, then
    every backend tried. The status, type and fault follow the most actionable cause: a key a
    backend refused (`Fault.CONFIG`) wins over whatever failed after it, so a wrong key is
    never reported as a temporary server-side problem; otherwise the last error decides.
    """

    outcome = "all_failed"

    def __init__(self, errors: list[BackendError]) -> None:
        first, last = errors[0], errors[-1]
        tried = ", ".join(e.backend for e in errors)
        said = _lead(first) if len(errors) == 1 else f"{_lead(first)}; then {_lead(last)}"
        super().__init__(f"{said} (tried {tried})")
        cause = next((e for e in errors if e.fault is Fault.CONFIG), last)
        self.errors = errors
        self.cause = cause
        """The error the status follows (see the class docstring)."""
        self.attempts = sum(e.attempts for e in errors)
        self.status = cause.status
        self.error_type = cause.error_type
        self.fault = cause.fault
        self.backend = last.backend
        self.upstream_status = cause.upstream_status
        self.retry_after = cause.retry_after


def _lead(error: BackendError) -> str:
    """One backend's failure in a few words: a refused key says so, then its fix.

    A refused key's message is ``BACKEND: HTTP 401: <provider's words>; <fix>``
    (`ccrelay.http.statuses.error_for_status` appends the backend's ``auth_fix``).
    """
    if not isinstance(error, UpstreamAuthError):
        return error.message
    said = error.message.removeprefix(f"{error.backend}: ")
    _, _, fix = said.rpartition("; ")
    return f"{error.backend} refused the key ({error.outcome}): {fix}"


def from_translation(exc: TranslationError, backend: str = "") -> CcrelayError:
    """A `ccrelay_translate` error as this package's: the request's fault, or the backend's."""
    if isinstance(exc, MalformedReply):
        return ProtocolError(exc.backend or backend, exc.message)
    return InvalidRequestError(exc.message)


@contextmanager
def translation_errors(backend: str = "") -> Iterator[None]:
    """Where the client calls the translation outside a backend's attempt (the token estimate,
    ``ccrelay ask``'s assembly): its errors become this package's."""
    try:
        yield
    except (InvalidRequest, MalformedReply) as exc:
        raise from_translation(exc, backend) from None


class Unfinished(Exception):
    """A stream the consumer abandoned before message_stop: not ok, and no one's fault."""

    outcome = "abandoned"


def outcome_word(error: BaseException) -> str:
    """The word a record uses for how something ended with ``error`` (``CcrelayError.outcome``)."""
    import asyncio  # here, not at the top: `ccrelay --help` loads this module, not asyncio

    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    outcome = getattr(error, "outcome", None)
    return outcome if isinstance(outcome, str) else "error"
