"""The exception tree of `ccrelay.deploy`: serverless.yml and RunPod's management REST API.

No message contains a secret: RunPod's own error text is scrubbed of the API key and resolved
``${VAR}`` values by the HTTP layer (`ccrelay.http.client.UpstreamClient`) before an error is
built here, and pydantic's own error text (which echoes inputs) is never shown.

    DeployError (CcrelayError)
    ├── ServerlessConfigError (ValueError)  serverless.yml is missing or wrong (file, field path, fix)
    ├── MissingSecretError              RUNPOD_API_KEY is not set
    ├── RunPodTransportError            connection refused / reset / timed out; retryable
    ├── RunPodProtocolError             RunPod answered something that is not JSON, or too much
    └── RunPodAPIError                  RunPod answered an HTTP error (status)
        ├── RunPodAuthError             401 / 403
        ├── RunPodNotFound              404
        ├── RunPodRateLimited           429; retryable, retry_after kept
        └── RunPodServerError           5xx; retryable

These are what `ccrelay.deploy.rest` raises once its retries (made by `ccrelay.http.retry`
on the HTTP layer's own error types) are spent: the boundary the CLI catches.
"""

from __future__ import annotations

from ccrelay.errors import CcrelayError
from ccrelay_config.errors import ConfigProblem, render_problems

__all__ = [
    "DeployError",
    "MissingSecretError",
    "Problem",
    "RunPodAPIError",
    "RunPodAuthError",
    "RunPodNotFound",
    "RunPodProtocolError",
    "RunPodRateLimited",
    "RunPodServerError",
    "RunPodTransportError",
    "ServerlessConfigError",
]


class DeployError(CcrelayError):
    """Deploying to RunPod failed."""


Problem = ConfigProblem
"""One thing wrong in serverless.yml: where (dotted field path), what, and how to fix it."""


class ServerlessConfigError(DeployError, ValueError):
    """serverless.yml cannot be used; every problem names the file, the field path and the fix."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(render_problems(source, problems))


class MissingSecretError(DeployError):
    """A required secret (RUNPOD_API_KEY) is not set in the environment."""


class RunPodTransportError(DeployError):
    """The RunPod API could not be reached (connection refused, reset, timeout); ``reason`` is
    the failure in plain words."""

    retryable = True

    def __init__(self, message: str, reason: str = "") -> None:
        self.reason = reason or message
        super().__init__(message)


class RunPodProtocolError(DeployError):
    """RunPod answered with a body that is not its API's (not JSON, or past the size limit)."""


class RunPodAPIError(DeployError):
    """RunPod answered with an HTTP error; ``status`` is its status code."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class RunPodAuthError(RunPodAPIError):
    pass


class RunPodNotFound(RunPodAPIError):
    pass


class RunPodRateLimited(RunPodAPIError):
    retryable = True


class RunPodServerError(RunPodAPIError):
    retryable = True
