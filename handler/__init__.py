"""The RunPod serverless handler: OpenAI chat completions in, Redis before Ollama.

``python -m handler`` starts the RunPod worker; ``worker.http_server`` serves the same
``ChatService`` over HTTP.  See ``handler.errors`` for the exception tree.
"""

from __future__ import annotations

from handler.errors import (
    CacheUnavailable,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    HandlerError,
    InvalidInput,
    ModelNotAllowed,
    SettingsError,
)
from handler.request import ChatRequest, parse_chat_request, parse_job_input
from handler.runpod_handler import RunPodHandler
from handler.service import ChatService
from handler.settings import HandlerSettings

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
