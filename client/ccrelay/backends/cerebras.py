"""Cerebras' hosted inference (Qwen3-Coder), OpenAI-compatible at https://api.cerebras.ai/v1."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ccrelay.openai_chat import OpenAIChatBackend, OpenAIChatSettings
from ccrelay_config.models import BackendSettings


class CerebrasSettings(OpenAIChatSettings):
    base_url: str | None = "https://api.cerebras.ai/v1"
    model: str | None = Field(
        "qwen-3-coder-480b",
        description="Cerebras retires model ids; `ccrelay models --backend NAME` lists current ones",
    )


class CerebrasBackend(OpenAIChatBackend):
    type_name = "cerebras"
    Settings: ClassVar[type[BackendSettings]] = CerebrasSettings
    default_base_url = "https://api.cerebras.ai/v1"
    # Cerebras answers 400 to these OpenAI fields.
    always_drop = ("parallel_tool_calls", "frequency_penalty", "presence_penalty", "logit_bias")
