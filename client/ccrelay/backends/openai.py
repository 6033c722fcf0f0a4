"""Any OpenAI-compatible server: LiteLLM on Vast.ai, a RunPod pod, vLLM, Ollama's /v1, the worker's HTTP mode.

Self-hosted proxies often need no key; a dummy one is fine and is sent as a bearer token.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ccrelay.backends.openai_chat import OpenAIChatBackend, OpenAIChatSettings
from ccrelay_config.models import BackendSettings


class OpenAISettings(OpenAIChatSettings):
    base_url: str = Field(..., description="the server's OpenAI base, e.g. http://host:4000/v1")


class OpenAIBackend(OpenAIChatBackend):
    type_name = "openai"
    Settings: ClassVar[type[BackendSettings]] = OpenAISettings
