"""The one exception tree of the worker package (boot, Ollama child, model store).

Every message says what failed, where, and how to fix it; pydantic's own error text (which
echoes inputs) is never shown.

    WorkerError
    ├── WorkerConfigError (ValueError)      an environment variable does not make valid settings
    ├── EngineError                         the `ollama serve` child process
    │   ├── EngineStartError                it could not be started (binary missing, port taken)
    │   ├── EngineExitedError               it exited (before answering, or later while serving)
    │   └── EngineNotReadyError (TimeoutError)  it never answered GET /api/version before the deadline
    ├── OllamaAPIError                      Ollama answered with an error or could not be reached
    │   ├── ModelPullError                  POST /api/pull failed or ended without "success"
    │   └── ModelWarmError                  POST /api/generate (loading the model) failed
    ├── PullLockTimeout (TimeoutError)      another worker held the pull lock past the deadline
    └── ModelStoreNotWritable               the model is missing and the volume refuses writes

Retry decisions look at ``retryable`` (a class attribute), never at message strings.
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "EngineExitedError",
    "EngineNotReadyError",
    "EngineStartError",
    "ModelPullError",
    "ModelStoreNotWritable",
    "ModelWarmError",
    "OllamaAPIError",
    "PullLockTimeout",
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


class ModelStoreNotWritable(WorkerError):
    """The model must be pulled, but the models directory refuses writes (read-only, full)."""

    def __init__(self, directory: str, reason: str) -> None:
        self.directory = directory
        self.reason = reason
        super().__init__(
            f"the model is missing and {directory} cannot be written ({reason}); attach a "
            "writable network volume with room for the model, "
            "or seed it once with `python -m ccrelay_worker --prepare` where it can be written"
        )
