"""``ResponseCache``: completed chat completions in Redis, keyed by what determines the output.

Key: ``<namespace>:<version>:<sha256 hex>`` of the canonical JSON (sorted keys, compact,
UTF-8) of every output-affecting parameter of the request (``ChatRequest.key_material``:
model, messages, tools, tool_choice, temperature, top_p, max_tokens, stop, seed,
response_format, penalties, n, logit_bias and any other field forwarded to Ollama; never
``stream``, ``stream_options``, ``user`` or ``cache``).  Value: the full non-streamed
``chat.completion`` as JSON, so a streamed and a plain request share one entry.  The
single-flight lock of a key lives at ``<key>:lock``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ccrelay_handler.store import RedisStore

__all__ = ["ResponseCache", "canonical_json", "decode_completion", "encode_completion"]

logger = logging.getLogger("ccrelay.handler")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: equal requests give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_completion(completion: dict[str, Any]) -> bytes:
    return json.dumps(completion, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_completion(raw: bytes) -> dict[str, Any] | None:
    """The stored completion, or None for an entry that is not one (treated as a miss)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "choices" in value else None


class ResponseCache:
    """Reads and writes completions; raises ``CacheUnavailable`` (from the store) when Redis is out."""

    def __init__(
        self, store: RedisStore, *, namespace: str, version: str, default_ttl_s: int
    ) -> None:
        self._store = store
        self._prefix = f"{namespace}:{version}:"
        self.default_ttl_s = default_ttl_s

    def key_for(self, material: dict[str, Any]) -> str:
        digest = hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()
        return self._prefix + digest

    def short(self, key: str) -> str:
        """The first 12 hex digits of a key's digest, for log lines."""
        return key[len(self._prefix) : len(self._prefix) + 12]

    @staticmethod
    def lock_key(key: str) -> str:
        return f"{key}:lock"

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._store.get(key)
        return None if raw is None else self._decode(key, raw)

    async def put_raw(self, key: str, raw: bytes, ttl_s: int | None = None) -> None:
        """Store an encoded completion (``encode_completion``) for ``ttl_s`` or the default TTL."""
        await self._store.set(key, raw, ttl_s or self.default_ttl_s)

    async def peek(self, key: str) -> tuple[dict[str, Any] | None, bool]:
        """The stored completion (if any) and whether its single-flight lock is held, in one trip."""
        raw, (locked,) = await self._store.peek(key, self.lock_key(key))
        return (None if raw is None else self._decode(key, raw)), locked

    def _decode(self, key: str, raw: bytes) -> dict[str, Any] | None:
        completion = decode_completion(raw)
        if completion is None:
            logger.warning("cache entry %s is not a completion; treated as a miss", self.short(key))
        return completion
