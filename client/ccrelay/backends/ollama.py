"""Ollama's OpenAI-compatible API (``/v1``): a local Ollama, or the worker's own HTTP mode.

The generic `openai` backend with what Ollama 0.13 takes (ollama/ollama v0.13.5,
``middleware/openai.go``): images only as jpeg/png/webp data URIs (a GIF or an image URL fails
the whole request with "invalid image input"), so anything else becomes a short note. Reasoning
comes back as ``reasoning`` and becomes thinking blocks, and earlier thinking goes back to it as
``reasoning`` on the assistant turn (Ollama maps it to its ``thinking``). Its completion ids repeat
(``chatcmpl-<0..998>``), which is why every reply gets a fresh ``msg_`` id of ccrelay's own.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ccrelay.backends.openai_chat import OpenAIChatBackend, OpenAIChatSettings
from ccrelay_config.models import BackendSettings
from ccrelay_translate.capabilities import OLLAMA_IMAGES, Accepts
from ccrelay_wire.defaults import DEFAULT_MODEL


def _ollama_accepts() -> Accepts:
    return Accepts(
        image_types=sorted(OLLAMA_IMAGES), image_urls=False, reasoning_history="reasoning"
    )


class OllamaSettings(OpenAIChatSettings):
    base_url: str | None = "http://127.0.0.1:11434/v1"
    model: str | None = Field(DEFAULT_MODEL, description="an Ollama tag the server has pulled")
    accepts: Accepts = Field(default_factory=_ollama_accepts)


class OllamaBackend(OpenAIChatBackend):
    type_name = "ollama"
    Settings: ClassVar[type[BackendSettings]] = OllamaSettings
    default_base_url = "http://127.0.0.1:11434/v1"
