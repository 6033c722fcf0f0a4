"""The ccrelay worker: Ollama with the model on a RunPod network volume, its boot, and deployment.

Public surface: the boot (`python -m worker`, :func:`main`, :func:`boot`), its settings, the
Ollama client and child process, the volume's pull lock, and the error tree. Deployment to
RunPod lives in :mod:`worker.deploy`; the HTTP mode in :mod:`worker.http_server`.
"""

from __future__ import annotations

from worker.boot import BootReport, boot, main
from worker.errors import (
    DeployError,
    EngineError,
    EngineExitedError,
    EngineNotReadyError,
    EngineStartError,
    MissingSecretError,
    ModelPullError,
    ModelWarmError,
    OllamaAPIError,
    PullLockTimeout,
    RunPodAPIError,
    ServerlessConfigError,
    WorkerConfigError,
    WorkerError,
)
from worker.model_store import EnsureResult, PullProgress, ensure_model
from worker.ollama_api import OllamaClient
from worker.ollama_process import EngineWatcher, OllamaProcess
from worker.pull_lock import PullLock
from worker.settings import DEFAULT_MODEL, WorkerSettings

__all__ = [
    "DEFAULT_MODEL",
    "BootReport",
    "DeployError",
    "EngineError",
    "EngineExitedError",
    "EngineNotReadyError",
    "EngineStartError",
    "EngineWatcher",
    "EnsureResult",
    "MissingSecretError",
    "ModelPullError",
    "ModelWarmError",
    "OllamaAPIError",
    "OllamaClient",
    "OllamaProcess",
    "PullLock",
    "PullLockTimeout",
    "PullProgress",
    "RunPodAPIError",
    "ServerlessConfigError",
    "WorkerConfigError",
    "WorkerError",
    "WorkerSettings",
    "boot",
    "ensure_model",
    "main",
]
