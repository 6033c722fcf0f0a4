"""Token prices, used to estimate the cost of each call and the saving versus Anthropic.

Prices are list prices in USD per million tokens, keyed by model id or by an ``fnmatch`` pattern
(``qwen3-coder*``). Lookup, case-insensitive:

1. an exact key in ``overrides``, then a key naming the same Claude model (a dated id, an
   alias: ``claude-opus-4-1-20250805`` is ``claude-opus-4-1``), then the most specific matching
   pattern in ``overrides``;
2. the same in ``models`` (which defaults to :data:`DEFAULT_MODEL_PRICES`; the Claude prices
   and their sources are in `ccrelay_config.claude_prices`);
3. a Claude model no table knows (a newer Opus): the newest known model of its family, and
   `PriceTable.priced_as` says which, for ``ccrelay stats`` to say so;
4. ``default`` (free: an unknown model is taken to be self-hosted).

"Most specific" is the pattern with the most literal (non-wildcard) characters; ties go to the
first in table order.

Cost is looked up by backend first: ``backends.<name>`` may carry its own ``models`` table and
``default`` (the same model id can cost differently through Cerebras, OpenRouter or your own
GPU), and a ``gpu_usd_per_second`` for a self-hosted backend, charged for the seconds each
attempt took (see docs/records.md for why that is an upper bound per request).

``baseline`` names the Anthropic model used when the client asked for a model that is not a
Claude model; otherwise the baseline is the Claude model the client asked for. Anthropic bills
prompt caching apart from plain input: a 5-minute cache write at 1.25 times the input price, a
cache read at 0.1 times (anthropic.com/pricing, "Prompt caching"); :class:`ModelPrice` takes
those multipliers unless a price sets its own.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ccrelay_config.claude_prices import ClaudeVersion, claude_version, list_prices

__all__ = [
    "CACHE_READ_FACTOR",
    "CACHE_WRITE_FACTOR",
    "DEFAULT_BASELINE_MODEL",
    "DEFAULT_MODEL_PRICES",
    "BackendPrice",
    "ModelPrice",
    "PriceTable",
]

_WILDCARDS = frozenset("*?[]")
CACHE_WRITE_FACTOR: Final = 1.25
"""A 5-minute prompt-cache write, as a multiple of the input price (Anthropic's pricing)."""
CACHE_READ_FACTOR: Final = 0.1
"""A prompt-cache read, as a multiple of the input price (Anthropic's pricing)."""


class ModelPrice(BaseModel):
    """The price of one model, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)
    """Default: ``input_per_mtok`` times :data:`CACHE_WRITE_FACTOR`."""
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    """Default: ``input_per_mtok`` times :data:`CACHE_READ_FACTOR`."""

    def cost(
        self, tokens_in: int, tokens_out: int, cache_read: int = 0, cache_write: int = 0
    ) -> float:
        """``tokens_in`` is uncached input; cache reads and writes are priced apart."""
        write = self.cache_write_per_mtok
        read = self.cache_read_per_mtok
        if write is None:
            write = self.input_per_mtok * CACHE_WRITE_FACTOR
        if read is None:
            read = self.input_per_mtok * CACHE_READ_FACTOR
        return (
            tokens_in * self.input_per_mtok
            + tokens_out * self.output_per_mtok
            + cache_read * read
            + cache_write * write
        ) / 1_000_000


class BackendPrice(BaseModel):
    """What one configured backend charges: per model, and per GPU-second when self-hosted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice] = Field(default_factory=dict)
    default: ModelPrice | None = None
    """The price of a model ``models`` does not list (else the global tables decide)."""
    gpu_usd_per_second: float = Field(default=0.0, ge=0)
    """A self-hosted GPU's price per second (RunPod lists $/s per GPU type), charged for the
    seconds each attempt took."""


def _price(
    input_per_mtok: float, output_per_mtok: float, cache_read: float | None = None
) -> ModelPrice:
    return ModelPrice(
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        cache_read_per_mtok=cache_read,
    )


# List prices (standard tier, no batch discount). Claude models by id (a dated id or an alias
# finds its model); other models by id or pattern, the most specific pattern winning.
DEFAULT_MODEL_PRICES: Final = MappingProxyType(
    {
        **{model: _price(*figures) for model, figures in list_prices().items()},
        # Cerebras (list prices; its catalog changes: check cerebras.ai/pricing).
        "gpt-oss-120b": _price(0.35, 0.75),
        "qwen-3.8-27b": _price(0.99, 1.49),  # as reported in late 2026; check the live page
        "qwen-3-coder-480b": _price(2.0, 2.0),  # retired; kept to price old records
        # Self-hosted (Ollama tags on the RunPod worker, or a pod behind LiteLLM): no per-token cost.
        "qwen3-coder*": _price(0.0, 0.0),
    }
)

DEFAULT_BASELINE_MODEL: Final = "claude-sonnet-4-5"


def _specificity(pattern: str) -> int:
    return sum(1 for char in pattern if char not in _WILDCARDS)


def _lookup(table: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """Exact key first, then a key naming the same Claude model, then the most specific
    matching pattern; ``model`` is lower case."""
    exact = table.get(model)
    if exact is not None:
        return exact
    version = claude_version(model)
    best: tuple[int, ModelPrice] | None = None
    for pattern, price in table.items():
        key = pattern.lower()
        wild = any(char in _WILDCARDS for char in key)
        if key == model or (not wild and version is not None and claude_version(key) == version):
            return price
        if wild and fnmatchcase(model, key):
            score = _specificity(key)
            if best is None or score > best[0]:
                best = (score, price)
    return None if best is None else best[1]


def _newest_of_family(
    tables: tuple[dict[str, ModelPrice], ...], family: str
) -> tuple[str, ModelPrice] | None:
    """The known model of ``family`` with the highest version, across ``tables``."""
    best: tuple[ClaudeVersion, str, ModelPrice] | None = None
    for table in tables:
        for key, price in table.items():
            if any(char in _WILDCARDS for char in key):
                continue
            version = claude_version(key)
            if version is not None and version[0] == family and (best is None or version > best[0]):
                best = (version, key, price)
    return None if best is None else (best[1], best[2])


class PriceTable(BaseModel):
    """Per-model prices with wildcard patterns; see the module docstring for the lookup order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_MODEL_PRICES))
    overrides: dict[str, ModelPrice] = Field(default_factory=dict)
    default: ModelPrice = Field(default_factory=lambda: _price(0.0, 0.0))
    baseline: str = DEFAULT_BASELINE_MODEL
    backends: dict[str, BackendPrice] = Field(default_factory=dict)
    """Prices by configured backend name, looked up before the model tables."""
    _found: dict[tuple[str, str | None], tuple[ModelPrice, str | None]] = PrivateAttr(
        default_factory=dict
    )
    """Answers already looked up: the table is frozen, and every record asks twice."""

    def price(self, model: str, backend: str | None = None) -> ModelPrice:
        """The price that applies to ``model`` served by ``backend``."""
        return self._answer(model, backend)[0]

    def priced_as(self, model: str, backend: str | None = None) -> str | None:
        """The known model whose price ``model`` got because no table knows it (a Claude
        model newer than the table: its family's newest); None when it has its own price."""
        return self._answer(model, backend)[1]

    def _answer(self, model: str, backend: str | None) -> tuple[ModelPrice, str | None]:
        key = (model, backend)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._look_up(model, backend)
            if len(self._found) > 4096:  # model names come from requests: stay bounded
                self._found.clear()
        return found

    def _look_up(self, model: str, backend: str | None) -> tuple[ModelPrice, str | None]:
        name = model.lower()
        own = self.backends.get(backend) if backend is not None else None
        if own is not None:
            found = _lookup(own.models, name)
            if found is not None:
                return found, None
            if own.default is not None:
                return own.default, None
        for table in (self.overrides, self.models):
            found = _lookup(table, name)
            if found is not None:
                return found, None
        if name.startswith("claude-"):
            version = claude_version(name)
            family = version[0] if version is not None else "sonnet"  # no family named
            newest = _newest_of_family((self.overrides, self.models), family)
            if newest is not None:
                return newest[1], newest[0]
        return self.default, None

    def cost(
        self,
        model: str,
        tokens_in: int,
        tokens_out: int,
        *,
        backend: str | None = None,
        cache_read: int = 0,
        cache_write: int = 0,
        seconds: float = 0.0,
    ) -> float:
        """Estimated cost in USD: the tokens at ``backend``'s price for ``model``, plus its
        GPU-seconds when it has a ``gpu_usd_per_second``."""
        tokens = self.price(model, backend).cost(tokens_in, tokens_out, cache_read, cache_write)
        own = self.backends.get(backend) if backend is not None else None
        return tokens + (own.gpu_usd_per_second * seconds if own is not None else 0.0)

    def baseline_model(self, requested: str | None) -> str:
        """The Claude model a request is compared with: the one asked for, if it is Claude."""
        if requested and requested.lower().startswith("claude-"):
            return requested
        return self.baseline

    def baseline_cost(
        self,
        tokens_in: int,
        tokens_out: int,
        *,
        requested: str | None = None,
        cache_read: int = 0,
        cache_write: int = 0,
    ) -> float:
        """What Anthropic would have billed for the same tokens on the baseline model."""
        return self.price(self.baseline_model(requested)).cost(
            tokens_in, tokens_out, cache_read, cache_write
        )
