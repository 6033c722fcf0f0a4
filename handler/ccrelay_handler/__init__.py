"""The RunPod serverless handler: OpenAI chat completions in, Redis before Ollama.

``python -m ccrelay_handler`` starts the RunPod worker; ``ccrelay_worker.http_server`` serves the same
``ChatService`` over HTTP.  See ``ccrelay_handler.errors`` for the exception tree.
"""

from __future__ import annotations

from ccrelay_handler.errors import (
    CacheUnavailable,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    HandlerError,
    InvalidInput,
    ModelNotAllowed,
    SettingsError,
)
from ccrelay_handler.request import ChatRequest, parse_chat_request, parse_job_input
from ccrelay_handler.runpod_handler import RunPodHandler
from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings

__all__ = [
    "CacheUnavailable",
    "ChatRequest",
    "ChatService",
    "EngineError",
    "EngineTimeout",
    "EngineUnavailable",
    "HandlerError",
    "HandlerSettings",
    "InvalidInput",
    "ModelNotAllowed",
    "RunPodHandler",
    "SettingsError",
    "parse_chat_request",
    "parse_job_input",
]
