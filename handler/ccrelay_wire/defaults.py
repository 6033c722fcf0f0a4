"""What a client may assume of a ccrelay worker before it has asked one.

The worker reports what it really serves (its warm-up answer and model list carry the model
and the window it was configured with); these are only what the image does when nobody says
otherwise, shared so that the client's `runpod` backend, its `ollama` backend, ``ccrelay
deploy`` and the worker itself spell them once.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_CONTEXT_WINDOW", "DEFAULT_MODEL"]

DEFAULT_MODEL: Final = "qwen3-coder:30b"
"""The Ollama tag the worker pulls and serves when CCRELAY_MODEL is unset."""

DEFAULT_CONTEXT_WINDOW: Final = 32768
"""The per-request context (OLLAMA_CONTEXT_LENGTH) a worker reports when nothing else says."""
