"""What one OpenAI-speaking backend (and model) can take, so a request is shaped to fit it.

Claude Code sends what Anthropic accepts: PDFs, GIFs, image URLs, JSON schemas with every
keyword, ``output_config.format``, thinking and effort, any number of stop sequences. Each
backend type declares its `Capabilities` (config can change them); the translation keeps what
fits and replaces what does not with a short note, so a turn never fails on content:

- images: only `image_types` go as data URIs, URLs only when `image_urls`; the rest become a
  ``[image left out: ...]`` text (Ollama takes jpeg/png/webp data URIs only);
- PDFs: their text, extracted (`ccrelay_translate.documents`), up to `pdf_max_pages` pages and
  `pdf_max_chars` characters, saying what was cut;
- tool schemas: `strip_schema_keywords` removed at every depth (Cerebras rejects some);
- ``output_config.format`` becomes ``response_format`` when `structured_output`;
- at most `max_stop` stop sequences (OpenAI's API takes 4);
- ``reasoning_effort`` is sent only in `reasoning_efforts`' values (none: never sent);
- the history's thinking goes back as `reasoning_history` names it: ``"reasoning"`` (vLLM,
  Ollama), ``"reasoning_content"`` (DeepSeek), or ``"off"`` (not sent: the default here, each
  backend type sets its own).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ALL_IMAGES", "OLLAMA_IMAGES", "Accepts", "Capabilities", "ReasoningHistory"]

ReasoningHistory = Literal["off", "reasoning", "reasoning_content"]
"""Where an assistant message of the history carries its reasoning, if anywhere."""

ALL_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
OLLAMA_IMAGES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
"""Ollama 0.13 decodes only these data URIs (``middleware/openai.go``); GIFs and URLs fail."""


@dataclass(frozen=True)
class Capabilities:
    image_types: frozenset[str] = ALL_IMAGES
    image_urls: bool = True
    pdf_max_pages: int = 100
    pdf_max_chars: int = 400_000
    strip_schema_keywords: frozenset[str] = frozenset()
    structured_output: bool = True
    max_stop: int = 4
    reasoning_efforts: tuple[str, ...] = field(default=())
    reasoning_history: ReasoningHistory = "off"


_CAPABILITIES: dict[tuple[int, str], tuple[Accepts, Capabilities]] = {}
"""(id of the settings, model) -> (the settings, their capabilities): settings are frozen, and
this runs on every request. The settings object is kept with its entry, so an id is never
reused while the entry lives."""


class Accepts(BaseModel):
    """A backend's ``accepts`` config: what it takes; each backend type sets its defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_types: list[str] = Field(
        default_factory=lambda: sorted(ALL_IMAGES),
        description="image media types sent as data URIs; others become a short note",
    )
    image_urls: bool = Field(True, description="pass http(s) image URLs on")
    pdf_max_pages: int = Field(100, ge=1, description="PDF pages whose text is sent")
    pdf_max_chars: int = Field(400_000, ge=1000, description="PDF text sent, at most")
    strip_schema_keywords: list[str] = Field(
        default_factory=list, description="JSON-schema keywords removed from tool schemas"
    )
    structured_output: bool = Field(
        True, description="send output_config.format as response_format"
    )
    max_stop: int = Field(4, ge=0, description="stop sequences sent, at most")
    reasoning_efforts: list[str] = Field(
        default_factory=list,
        description="reasoning_effort values the backend takes (none: never sent)",
    )
    reasoning_models: list[str] = Field(
        default_factory=lambda: ["*"],
        description="model patterns reasoning_effort is sent for (others answer 400)",
    )
    reasoning_history: ReasoningHistory = Field(
        "off",
        description='the assistant-message field the history\'s thinking goes in: "reasoning" '
        '(vLLM, Ollama), "reasoning_content" (DeepSeek) or "off" (dropped)',
    )

    @field_validator("reasoning_history", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        """YAML 1.1 reads a bare ``off`` as false (PyYAML's safe_load does)."""
        return "off" if value is False or value is None else value

    def capabilities(self, model: str) -> Capabilities:
        """What a request to `model` may carry; computed once per model (settings are frozen)."""
        known = _CAPABILITIES.get((id(self), model))
        if known is not None and known[0] is self:
            return known[1]
        made = self._capabilities(model)
        if len(_CAPABILITIES) > 1024:
            _CAPABILITIES.clear()
        _CAPABILITIES[(id(self), model)] = (self, made)
        return made

    def _capabilities(self, model: str) -> Capabilities:
        efforts: tuple[str, ...] = ()
        if any(fnmatch.fnmatchcase(model, pattern) for pattern in self.reasoning_models):
            efforts = tuple(self.reasoning_efforts)
        return Capabilities(
            image_types=frozenset(t.lower() for t in self.image_types),
            image_urls=self.image_urls,
            pdf_max_pages=self.pdf_max_pages,
            pdf_max_chars=self.pdf_max_chars,
            strip_schema_keywords=frozenset(self.strip_schema_keywords),
            structured_output=self.structured_output,
            max_stop=self.max_stop,
            reasoning_efforts=efforts,
            reasoning_history=self.reasoning_history,
        )
