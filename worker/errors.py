"""The one exception tree of the worker package (boot, Ollama child, model store, deployment).

Every message says what failed, where, and how to fix it. No message contains a secret: the
RunPod API key and resolved ``${VAR}`` values are scrubbed before an error is built, and
pydantic's own error text (which echoes inputs) is never shown.

    WorkerError
    ├── WorkerConfigError (ValueError)      an environment variable does not make valid settings
    ├── ServerlessConfigError (ValueError)  serverless.yml is missing or wrong (file, field path, fix)
    ├── EngineError                         the `ollama serve` child process
    │   ├── EngineStartError                it could not be started (binary missing, port taken)
    │   ├── EngineExitedError               it exited (before answering, or later while serving)
    │   └── EngineNotReadyError (TimeoutError)  it never answered GET /api/version before the deadline
    ├── OllamaAPIError                      Ollama answered with an error or could not be reached
    │   ├── ModelPullError                  POST /api/pull failed or ended without "success"
    │   └── ModelWarmError                  POST /api/generate (loading the model) failed
    ├── PullLockTimeout (TimeoutError)      another worker held the pull lock past the deadline
    └── DeployError                         talking to RunPod's management REST API
        ├── MissingSecretError              RUNPOD_API_KEY is not set
        ├── RunPodTransportError            connection refused / reset / timed out; retryable
        └── RunPodAPIError                  RunPod answered an HTTP error (status)
            ├── RunPodAuthError             401 / 403
            ├── RunPodNotFound              404
            ├── RunPodRateLimited           429; retryable, retry_after kept
            └── RunPodServerError           5xx; retryable

Retry decisions look at ``retryable`` (a class attribute), never at message strings.
"""

from __future__ import annotations

from config.errors import ConfigProblem, render_problems

__all__ = [
    "DeployError",
    "EngineError",
    "EngineExitedError",
    "EngineNotReadyError",
    "EngineStartError",
    "MissingSecretError",
    "ModelPullError",
    "ModelWarmError",
    "OllamaAPIError",
    "Problem",
    "PullLockTimeout",
    "RunPodAPIError",
    "RunPodAuthError",
    "RunPodNotFound",
    "RunPodRateLimited",
    "RunPodServerError",
    "RunPodTransportError",
    "ServerlessConfigError",
    "WorkerConfigError",
    "WorkerError",
]


class WorkerError(Exception):
    """Root of every error the worker package raises on purpose."""

    retryable: bool = False


class WorkerConfigError(WorkerError, ValueError):
    """An environment variable does not make valid worker settings."""

    def __init__(self, variable: str, problem: str, fix: str) -> None:
        self.variable = variable
        self.problem = problem
        self.fix = fix
        super().__init__(f"{variable}: {problem}; fix: {fix}")


Problem = ConfigProblem
"""One thing wrong in serverless.yml: where (dotted field path), what, and how to fix it."""


class ServerlessConfigError(WorkerError, ValueError):
    """serverless.yml cannot be used; every problem names the file, the field path and the fix."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(render_problems(source, problems))


class EngineError(WorkerError):
    """The Ollama child process failed."""


class EngineStartError(EngineError):
    """`ollama serve` could not be started at all."""


class EngineExitedError(EngineError):
    """`ollama serve` exited; ``returncode`` is its exit status (negative: killed by a signal)."""

    def __init__(self, message: str, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(message)


class EngineNotReadyError(EngineError, TimeoutError):
    """`ollama serve` did not answer GET /api/version before the readiness deadline."""


class OllamaAPIError(WorkerError):
    """Ollama's native API answered with an error (``status``) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ModelPullError(OllamaAPIError):
    """Pulling the model failed; the message carries Ollama's own error text."""

    def __init__(self, model: str, reason: str, status: int | None = None) -> None:
        self.model = model
        self.reason = reason
        super().__init__(
            f"pulling model {model!r} failed: {reason}. Check the model name (CCRELAY_MODEL), "
            "the worker's internet access and the free space on the volume, then restart the worker",
            status,
        )


class ModelWarmError(OllamaAPIError):
    """Loading the model into GPU memory failed (POST /api/generate with an empty prompt)."""

    def __init__(self, model: str, reason: str, status: int | None = None) -> None:
        self.model = model
        self.reason = reason
        super().__init__(
            f"loading model {model!r} failed: {reason}. The GPU may be too small for this model; "
            "pick a larger GPU type or a smaller model, or set CCRELAY_WARM=0 to skip warming",
            status,
        )


class PullLockTimeout(WorkerError, TimeoutError):
    """Another worker held the volume's pull lock for longer than the configured wait."""


class DeployError(WorkerError):
    """Deploying to RunPod failed."""


class MissingSecretError(DeployError):
    """A required secret (RUNPOD_API_KEY) is not set in the environment."""


class RunPodTransportError(DeployError):
    """The RunPod API could not be reached (connection refused, reset, timeout)."""

    retryable = True


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
