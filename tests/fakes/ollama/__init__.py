"""The one fake of Ollama (``ollama serve``): its OpenAI-compatible route and its native API.

- `FakeOllama` (server.py): a real aiohttp server on 127.0.0.1 (tests/fakes/harness.py),
  in-process (``await FakeOllama().start()``, or ``start_in_thread()`` for synchronous tests
  and subprocesses) or as the worker's engine child (``python -m tests.fakes.ollama``,
  __main__.py).
- `OllamaProfile` (openai_route.py): every quirk of ``/v1/chat/completions``, each written once
  with its source in ollama/ollama.
- models.py: the model store, cards, default context and how an over-long prompt is fitted.
- releases.py: `CURRENT` (what the worker image pins) and `OLLAMA_0_13_5` (what a user may
  still run), and the release asset names.

Fixtures (tests/conftest.py): ``ollama_server`` (the worker's engine: the model present, in a
thread), ``ollama_native_server`` (no model yet: the boot pulls it), ``profiled("ollama")``.
"""

from __future__ import annotations

from tests.fakes.ollama.models import DEFAULT_MODEL, ModelCard, ModelStore, canonical
from tests.fakes.ollama.openai_route import OllamaProfile
from tests.fakes.ollama.releases import CURRENT, OLLAMA_0_13_5, RELEASES, Release, linux_asset
from tests.fakes.ollama.server import FakeOllama

__all__ = [
    "CURRENT",
    "DEFAULT_MODEL",
    "OLLAMA_0_13_5",
    "RELEASES",
    "FakeOllama",
    "ModelCard",
    "ModelStore",
    "OllamaProfile",
    "Release",
    "canonical",
    "linux_asset",
]
