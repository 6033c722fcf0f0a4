"""Token prices, used to estimate the cost of each call and the saving versus Anthropic.

Prices are list prices in USD per million tokens, keyed by model id or by an ``fnmatch`` pattern
(``claude-sonnet-4*``). Lookup, case-insensitive:

1. an exact key in ``overrides``, then the most specific matching pattern in ``overrides``;
2. the same in ``models`` (which defaults to :data:`DEFAULT_MODEL_PRICES`);
3. ``default`` (free: an unknown model is taken to be self-hosted).

"Most specific" is the pattern with the most literal (non-wildcard) characters; ties go to the
first in table order. A self-hosted model costs 0 per token here; the hourly cost of a GPU is not
spread over tokens (it does not depend on them, and scale-to-zero makes it a per-hour question).

``baseline`` names the Anthropic model whose price answers "what would these tokens have cost
on Anthropic?"; :meth:`PriceTable.baseline_cost` prices tokens at it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_BASELINE_MODEL", "DEFAULT_MODEL_PRICES", "ModelPrice", "PriceTable"]

_WILDCARDS = frozenset("*?[]")


class ModelPrice(BaseModel):
    """The price of one model, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1_000_000


def _price(input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
    return ModelPrice(input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


# List prices (standard tier, no batch or prompt-cache discounts). More specific patterns win,
# so "claude-opus-4-5*" beats "claude-opus-4*" whatever the order.
DEFAULT_MODEL_PRICES: Final = MappingProxyType(
    {
        # Anthropic, Claude 4.x families.
        "claude-opus-4-5*": _price(5.0, 25.0),
        "claude-opus-4*": _price(15.0, 75.0),  # Opus 4 and 4.1
        "claude-sonnet-4*": _price(3.0, 15.0),  # Sonnet 4 and 4.5 (prompts up to 200k tokens)
        "claude-haiku-4*": _price(1.0, 5.0),
        "claude-3-7-sonnet*": _price(3.0, 15.0),
        "claude-3-5-haiku*": _price(0.8, 4.0),
        "claude-*": _price(3.0, 15.0),  # an Anthropic model not listed: priced as Sonnet
        # Cerebras (list prices; its catalog changes: check cerebras.ai/pricing).
        "gpt-oss-120b": _price(0.35, 0.75),
        "qwen-3-coder-480b": _price(2.0, 2.0),  # retired; kept to price old records
        # Self-hosted (Ollama tags on the RunPod worker, or a pod behind LiteLLM): no per-token cost.
        "qwen3-coder*": _price(0.0, 0.0),
    }
)

DEFAULT_BASELINE_MODEL: Final = "claude-sonnet-4-5"


def _specificity(pattern: str) -> int:
    return sum(1 for char in pattern if char not in _WILDCARDS)


def _lookup(table: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """Exact key first, then the most specific matching pattern; ``model`` is lower case."""
    best: tuple[int, ModelPrice] | None = None
    for pattern, price in table.items():
        key = pattern.lower()
        if key == model:
            return price
        if fnmatchcase(model, key):
            score = _specificity(key)
            if best is None or score > best[0]:
                best = (score, price)
    return None if best is None else best[1]


class PriceTable(BaseModel):
    """Per-model prices with wildcard patterns; see the module docstring for the lookup order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_MODEL_PRICES))
    overrides: dict[str, ModelPrice] = Field(default_factory=dict)
    default: ModelPrice = Field(default_factory=lambda: _price(0.0, 0.0))
    baseline: str = DEFAULT_BASELINE_MODEL

    def price(self, model: str) -> ModelPrice:
        """The price that applies to ``model``."""
        name = model.lower()
        for table in (self.overrides, self.models):
            found = _lookup(table, name)
            if found is not None:
                return found
        return self.default

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Estimated cost in USD of ``tokens_in`` prompt and ``tokens_out`` completion tokens."""
        return self.price(model).cost(tokens_in, tokens_out)

    def baseline_cost(self, tokens_in: int, tokens_out: int) -> float:
        """What the same tokens would have cost on the baseline Anthropic model."""
        return self.cost(self.baseline, tokens_in, tokens_out)
