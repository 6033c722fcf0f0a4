"""An OpenAI-style ``usage`` object as Anthropic's usage, cached prompt tokens included.

Anthropic splits the prompt in three: ``input_tokens`` (neither read from nor written to the
cache), ``cache_read_input_tokens`` and ``cache_creation_input_tokens``; their sum is the whole
prompt. OpenAI's ``prompt_tokens`` is the whole prompt, and servers report the cached part in
several places, read in this order (the first positive one wins, as LiteLLM does in
``litellm/llms/anthropic/experimental_pass_through/adapters/transformation.py``):

- read from the cache: ``cache_read_input_tokens`` (LiteLLM and proxies in front of Anthropic),
  ``prompt_tokens_details.cached_tokens`` (OpenAI, vLLM, SGLang), ``prompt_cache_hit_tokens``
  (DeepSeek, whose ``prompt_cache_miss_tokens`` is the rest of the prompt);
- written to the cache: ``cache_creation_input_tokens`` (LiteLLM),
  ``prompt_tokens_details.cache_creation_tokens`` (LiteLLM's wrapper),
  ``prompt_tokens_details.cache_write_tokens`` (OpenAI, since openai-python 2.45).

``input_tokens`` is then ``prompt_tokens`` less both (never below 0). The cache counts are
reported only when the server reports one (Ollama reports none: no field rather than a 0 that
would claim a cache miss).

Every count read must be a whole number from 0 to 2**63 - 1: anything else (a float with a
fraction, a bool, a string, a negative or huge number) raises `MalformedReply` naming the field,
never its value. A number orjson cannot write would otherwise surface later, when the gateway
encodes the reply, as an internal error.
"""

from __future__ import annotations

from collections.abc import Mapping

from ccrelay_translate.errors import MalformedReply

__all__ = ["anthropic_usage"]

_LIMIT = 2**63

_READ = (
    ("cache_read_input_tokens",),
    ("prompt_tokens_details", "cached_tokens"),
    ("prompt_cache_hit_tokens",),
)
_WRITTEN = (
    ("cache_creation_input_tokens",),
    ("prompt_tokens_details", "cache_creation_tokens"),
    ("prompt_tokens_details", "cache_write_tokens"),
)


def anthropic_usage(usage: object, backend: str = "upstream") -> dict[str, int]:
    """Anthropic usage counts from an OpenAI ``usage`` object: only the counts it reports."""
    if not isinstance(usage, Mapping):
        return {}
    reader = _Counts(usage, backend)
    prompt = reader.count(("prompt_tokens",))
    completion = reader.count(("completion_tokens",))
    missed = reader.count(("prompt_cache_miss_tokens",))
    read = reader.first((*_READ,))
    written = reader.first((*_WRITTEN,))
    out: dict[str, int] = {}
    if prompt is None and missed is not None:
        prompt = missed + (read or 0)  # DeepSeek's two halves
    if prompt is not None:
        out["input_tokens"] = max(prompt - (read or 0) - (written or 0), 0)
    if completion is not None:
        out["output_tokens"] = completion
    if read is not None:
        out["cache_read_input_tokens"] = read
    if written is not None:
        out["cache_creation_input_tokens"] = written
    return out


class _Counts:
    def __init__(self, usage: Mapping[str, object], backend: str) -> None:
        self.usage = usage
        self.backend = backend

    def first(self, paths: tuple[tuple[str, ...], ...]) -> int | None:
        """The first positive count of `paths`; else 0 when one was reported; else None."""
        seen: int | None = None
        for path in paths:
            value = self.count(path)
            if value:
                return value
            if value is not None:
                seen = 0
        return seen

    def count(self, path: tuple[str, ...]) -> int | None:
        value: object = self.usage
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        if value is None:
            return None
        field = "usage." + ".".join(path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedReply(self.backend, f"{field} is not a number")
        if isinstance(value, float):
            if not value.is_integer():
                raise MalformedReply(self.backend, f"{field} is not a whole number")
            if not -_LIMIT < value < _LIMIT:
                raise MalformedReply(self.backend, f"{field} is out of range")
            value = int(value)
        if not 0 <= value < _LIMIT:
            raise MalformedReply(self.backend, f"{field} is out of range")
        return value
