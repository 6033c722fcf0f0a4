"""Cerebras' hosted inference, OpenAI-compatible at https://api.cerebras.ai/v1.

Cerebras' catalog changes fast and a retired id answers 404 ``model_not_found`` (late 2026:
``qwen-3-coder-480b`` is gone; ``gpt-oss-120b`` and ``qwen-3.8-27b`` are the shared models, both
reasoning models). So no model is configured by default: the backend reads ``GET /models``
once and picks the first match of `CerebrasBackend.preferred_models`; a 404 names what Cerebras
does serve (Cerebras' model pages and its ``GET /v1/models``).

What Cerebras takes (`accepts` defaults):

- reasoning comes back as ``reasoning`` (message and delta) and becomes thinking blocks;
  ``reasoning_effort`` (``low`` | ``medium`` | ``high``) is sent to gpt-oss models only (others
  answer 400);
- tool schemas lose the keywords Cerebras has rejected with 400 ``Unsupported JSON schema
  fields`` (claude-code-router issue #708: ``minItems``, ``items`` constraints; dcdpr/jp#531:
  ``minItems``, ``maxItems``, ``pattern``, ``format``), and the draft markers Claude Code adds;
- no images: its shared models are text-only, so an image becomes a short note.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ccrelay.backends.openai_chat import OpenAIChatBackend, OpenAIChatSettings
from ccrelay_config.models import BackendSettings
from ccrelay_translate.capabilities import Accepts

CEREBRAS_SCHEMA_KEYWORDS = (
    "$schema",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "propertyNames",
)


def _cerebras_accepts() -> Accepts:
    return Accepts(
        image_types=[],
        image_urls=False,
        strip_schema_keywords=list(CEREBRAS_SCHEMA_KEYWORDS),
        reasoning_efforts=["low", "medium", "high"],
        reasoning_models=["gpt-oss*"],
    )


class CerebrasSettings(OpenAIChatSettings):
    base_url: str | None = "https://api.cerebras.ai/v1"
    model: str | None = Field(
        None,
        description="unset: picked from GET /models (Cerebras retires ids); "
        "`ccrelay models --backend NAME` lists the current ones",
    )
    accepts: Accepts = Field(default_factory=_cerebras_accepts)


class CerebrasBackend(OpenAIChatBackend):
    type_name = "cerebras"
    Settings: ClassVar[type[BackendSettings]] = CerebrasSettings
    default_base_url = "https://api.cerebras.ai/v1"
    # Cerebras answers 400 to these OpenAI fields.
    always_drop = ("parallel_tool_calls", "frequency_penalty", "presence_penalty", "logit_bias")
    discovers_model = True
    preferred_models = ("qwen-3-coder*", "gpt-oss-120b", "qwen-3*", "gpt-oss*")
    """A coder model first, then the largest shared model with tool use, then the rest."""
