"""The RunPod serverless handler: OpenAI chat completions in, Redis before Ollama.

``python -m ccrelay_handler`` starts the RunPod worker; ``ccrelay_worker.http_server`` serves the same
``ChatService`` over HTTP.  See ``ccrelay_handler.errors`` for the exception tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay_handler.errors import (
        CacheUnavailable,
        EngineError,
        EngineTimeout,
        EngineUnavailable,
        HandlerError,
        InvalidInput,
        ModelNotAllowed,
        PromptTooLong,
        SettingsError,
    )
    from ccrelay_handler.request import ChatRequest, parse_chat_request, parse_job_input
    from ccrelay_handler.runpod_handler import RunPodHandler
    from ccrelay_handler.service import ChatService
    from ccrelay_handler.settings import HandlerSettings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay_handler.errors": (
            "CacheUnavailable",
            "EngineError",
            "EngineTimeout",
            "EngineUnavailable",
            "HandlerError",
            "InvalidInput",
            "ModelNotAllowed",
            "PromptTooLong",
            "SettingsError",
        ),
        "ccrelay_handler.request": ("ChatRequest", "parse_chat_request", "parse_job_input"),
        "ccrelay_handler.runpod_handler": ("RunPodHandler",),
        "ccrelay_handler.service": ("ChatService",),
        "ccrelay_handler.settings": ("HandlerSettings",),
    },
)

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
    "PromptTooLong",
    "RunPodHandler",
    "SettingsError",
    "parse_chat_request",
    "parse_job_input",
]
