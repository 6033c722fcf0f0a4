"""What Ollama knows about its models: which it has, each one's card, its context, and how an
over-long prompt is fitted into that context.

Sources (ollama/ollama at v0.33.0-rc2, fb30760; see releases.py for what differs in 0.13.5):

- context: ``OLLAMA_CONTEXT_LENGTH`` if set, else the VRAM tier (``server/routes.go``
  2041-2058, total VRAM of all GPUs); clamped to the model's trained context
  (``server/sched.go`` ``effectiveContext``). ``/api/chat`` ``options.num_ctx`` wins over both.
- fitting (``server/prompt.go`` ``chatPrompt``, ``server/routes.go``
  ``truncateNativeChatMessages``): messages go from the front until the prompt fits, earlier
  system messages and the last message always kept. Still too long: the rendered path cuts
  tokens silently (``llm/llama_server.go`` ``completionPromptForRequest``); the native path
  (a GGUF model without an Ollama parser) gets llama-server's 400.
- the qwen3-coder renderer keeps only the first system message (``model/renderers/qwen3coder.go``).
- tokens are estimated as a quarter of each message's JSON length.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.fakes.ollama.releases import Release

__all__ = [
    "DEFAULT_MODEL",
    "Fitted",
    "ModelCard",
    "ModelStore",
    "PromptTooLong",
    "canonical",
    "default_context",
    "fit_prompt",
    "tokens_of",
]

DEFAULT_MODEL = "qwen3-coder:30b"
LAYERS = (
    ("sha256:" + "a" * 64, 4_000_000),
    ("sha256:" + "b" * 64, 1_000_000),
)
GIB = 1024**3
_NUM_KEEP = 4  # api.DefaultOptions().NumKeep


def canonical(name: str) -> str:
    """Ollama's full name: a model without a tag means ``:latest``."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


@dataclass(frozen=True)
class ModelCard:
    """One model as ``/api/show`` describes it. ``parser`` None: a GGUF model without an Ollama
    renderer/parser, served by llama-server's own template (the native path)."""

    name: str
    family: str = "qwen3moe"
    trained_context: int = 262144  # model_info["qwen3moe.context_length"]
    parser: str | None = "qwen3-coder"
    capabilities: tuple[str, ...] = ("completion", "tools")
    parameter_size: str = "30.5B"
    quantization: str = "Q4_K_M"


class ModelStore:
    """The models Ollama has on disk: in memory, or manifests under ``models_dir`` (so a second
    engine process on the same volume finds what the first pulled)."""

    def __init__(self, models_dir: Path | None = None, models: Iterable[str] = ()) -> None:
        self.models_dir = models_dir
        self.models: list[str] = [canonical(m) for m in models]
        self.cards: dict[str, ModelCard] = {}

    def _root(self) -> Path:
        assert self.models_dir is not None
        return self.models_dir / "manifests" / "registry.ollama.ai" / "library"

    def names(self) -> list[str]:
        if self.models_dir is None:
            return list(self.models)
        if not self._root().is_dir():
            return []
        return sorted(f"{p.parent.name}:{p.name}" for p in self._root().glob("*/*") if p.is_file())

    def add(self, name: str, card: ModelCard | None = None) -> None:
        if card is not None:
            self.cards[canonical(name)] = replace(card, name=canonical(name))
        if self.models_dir is None:
            if not self.has(name):
                self.models.append(canonical(name))
            return
        model, tag = canonical(name).rsplit(":", 1)
        path = self._root() / model / tag
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"layers": [{"digest": d, "size": s} for d, s in LAYERS]}))

    def has(self, name: str) -> bool:
        return bool(name) and canonical(name) in {canonical(n) for n in self.names()}

    def card(self, name: str) -> ModelCard:
        return self.cards.get(canonical(name)) or ModelCard(canonical(name))


def default_context(release: Release, *, context_length: int | None, vram_gib: float) -> int:
    """The context a model gets unless a request sets ``num_ctx``."""
    if context_length:
        return context_length
    if not release.vram_default_context:
        return 4096
    # "slightly lower thresholds (47/23 GiB vs. 48/24 GiB)", server/routes.go
    if vram_gib >= 47:
        return 262144
    if vram_gib >= 23:
        return 32768
    return 4096


def tokens_of(messages: list[dict[str, Any]]) -> int:
    return sum(math.ceil(len(json.dumps(m)) / 4) for m in messages)


class PromptTooLong(Exception):
    """llama-server refused the prompt: ``body`` is its raw error body, which Ollama passes on as
    the message (``llm/llama_server.go`` ``statusErrorMessage``; llama.cpp
    ``tools/server/server-context.cpp``)."""

    def __init__(self, prompt_tokens: int, context: int) -> None:
        error = {
            "code": 400,
            "message": f"request ({prompt_tokens} tokens) exceeds the available context size "
            f"({context} tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": prompt_tokens,
            "n_ctx": context,
        }
        self.body = json.dumps({"error": error}, separators=(",", ":"))
        super().__init__(self.body)


@dataclass
class Fitted:
    """What the model reads of a prompt, its token count, and whether anything was cut."""

    messages: list[dict[str, Any]]
    tokens: int
    cut: bool


def _rendered(card: ModelCard, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if card.parser != "qwen3-coder":
        return messages
    systems = [m for m in messages if m.get("role") == "system"]
    return systems[:1] + [m for m in messages if m.get("role") != "system"]


def fit_prompt(
    messages: list[dict[str, Any]],
    context: int,
    card: ModelCard,
    release: Release,
    *,
    truncate: bool = True,
) -> Fitted:
    """Fit ``messages`` into ``context`` tokens as Ollama does; `PromptTooLong` when it refuses."""
    if not truncate and release.llama_server:
        kept = _rendered(card, messages)
        if tokens_of(kept) > context:
            raise PromptTooLong(tokens_of(kept), context)
        return Fitted(kept, tokens_of(kept), cut=False)
    start = 0
    for start in range(len(messages)):
        systems = [m for m in messages[:start] if m.get("role") == "system"]
        if tokens_of(_rendered(card, systems + messages[start:])) <= context:
            break
    systems = [m for m in messages[:start] if m.get("role") == "system"]
    kept = _rendered(card, systems + messages[start:])
    tokens = tokens_of(kept)
    if tokens <= context:
        return Fitted(kept, tokens, cut=start > 0)
    if card.parser is None and release.llama_server:
        raise PromptTooLong(tokens, context)
    # llama-server keeps num_keep tokens and frees about half the context; 0.13.5's runner
    # kept num_keep and the last context - num_keep tokens
    half = context - max((context - _NUM_KEEP) // 2, 1)
    return Fitted(kept, half if release.llama_server else context, cut=True)
