"""The cache verdict: how the worker tells a client whether Redis answered.

The worker adds the verdict to what it sends and never to what it stores: the field on a
completion (or on a stream's first chunk), and a header on a streamed HTTP reply. The client
reads it into its latency records and answers it to Claude Code as the gateway's own header.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CACHE_VERDICTS", "CACHE_VERDICT_FIELD", "CACHE_VERDICT_HEADER"]

CACHE_VERDICTS: Final = ("hit", "miss", "bypass")
"""``bypass``: the cache was not consulted (``no-cache``/``no-store``, or Redis unavailable)."""

CACHE_VERDICT_FIELD: Final = "x_ccrelay_cache"
"""The field on a completion, or on a stream's first chunk (OpenAI shape)."""

CACHE_VERDICT_HEADER: Final = "x-ccrelay-cache"
"""The header on the worker's streamed HTTP replies, and on the gateway's own replies."""
