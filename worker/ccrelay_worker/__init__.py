"""The ccrelay worker: Ollama with the model on a RunPod network volume, and its boot.

Public surface: the boot (`python -m ccrelay_worker`, :func:`main`, :func:`boot`), its settings, the
Ollama client and child process, the volume's pull lock, and the error tree. Deployment to
RunPod lives in :mod:`ccrelay.deploy`; the HTTP mode in :mod:`ccrelay_worker.http_server`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay_worker.boot import BootReport, boot, main
    from ccrelay_worker.errors import (
        EngineError,
        EngineExitedError,
        EngineNotReadyError,
        EngineStartError,
        ModelPullError,
        ModelWarmError,
        OllamaAPIError,
        PullLockTimeout,
        WorkerConfigError,
        WorkerError,
    )
    from ccrelay_worker.model_store import EnsureResult, PullProgress, ensure_model
    from ccrelay_worker.ollama_api import OllamaClient
    from ccrelay_worker.ollama_process import EngineWatcher, OllamaProcess
    from ccrelay_worker.pull_lock import PullLock
    from ccrelay_worker.settings import DEFAULT_MODEL, WorkerSettings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay_worker.boot": ("BootReport", "boot", "main"),
        "ccrelay_worker.errors": (
            "EngineError",
            "EngineExitedError",
            "EngineNotReadyError",
            "EngineStartError",
            "ModelPullError",
            "ModelWarmError",
            "OllamaAPIError",
            "PullLockTimeout",
            "WorkerConfigError",
            "WorkerError",
        ),
        "ccrelay_worker.model_store": ("EnsureResult", "PullProgress", "ensure_model"),
        "ccrelay_worker.ollama_api": ("OllamaClient",),
        "ccrelay_worker.ollama_process": ("EngineWatcher", "OllamaProcess"),
        "ccrelay_worker.pull_lock": ("PullLock",),
        "ccrelay_worker.settings": ("DEFAULT_MODEL", "WorkerSettings"),
    },
)

__all__ = [
    "DEFAULT_MODEL",
    "BootReport",
    "EngineError",
    "EngineExitedError",
    "EngineNotReadyError",
    "EngineStartError",
    "EngineWatcher",
    "EnsureResult",
    "ModelPullError",
    "ModelWarmError",
    "OllamaAPIError",
    "OllamaClient",
    "OllamaProcess",
    "PullLock",
    "PullLockTimeout",
    "PullProgress",
    "WorkerConfigError",
    "WorkerError",
    "WorkerSettings",
    "boot",
    "ensure_model",
    "main",
]
