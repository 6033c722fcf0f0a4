"""The one fake of Ollama (``ollama serve``): its OpenAI-compatible route and its native API.

- `FakeOllama` (server.py): a real aiohttp server on 127.0.0.1 (tests/fakes/harness.py),
  in-process (``await FakeOllama().start()``, or ``start_in_thread()`` for synchronous tests
  and subprocesses) or as the worker's engine child (``python -m tests.fakes.ollama``,
  __main__.py).
- `OllamaProfile` (openai_route.py): every quirk of ``/v1/chat/completions``, each written once
  with its source in ollama/ollama.

Fixtures (tests/conftest.py): ``ollama_server`` (the worker's engine: the model present, in a
thread), ``ollama_native_server`` (no model yet: the boot pulls it), ``profiled("ollama")``.
"""

from __future__ import annotations

from tests.fakes.ollama.openai_route import OllamaProfile
from tests.fakes.ollama.server import DEFAULT_MODEL, VERSION, FakeOllama, ModelStore, canonical

__all__ = ["DEFAULT_MODEL", "VERSION", "FakeOllama", "ModelStore", "OllamaProfile", "canonical"]
