"""`FakeOllama`: the OpenAI-compatible route (`OllamaProfile`) plus Ollama's native API.

Native routes, as ``ollama serve`` answers them (ollama/ollama ``server/routes.go``, ``api/types.go``):
``GET /`` ("Ollama is running"), ``GET /api/version``, ``GET /api/tags``, ``POST /api/show``
(404 ``model 'NAME' not found`` for a model it lacks), ``POST /api/pull`` (NDJSON progress
lines; a failure mid-pull is an ``{"error"}`` line inside the 200 stream), ``POST /api/generate``
with an empty prompt (loads the model: ``done_reason: "load"``). Native errors are
``{"error": "<text>"}``.

Models live in a `ModelStore`: in memory, or, with ``models_dir``, as manifest files under
``OLLAMA_MODELS`` the way Ollama keeps them, so a second engine process on the same volume
finds what the first pulled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.harness import record
from tests.fakes.ollama.openai_route import OllamaProfile
from tests.fakes.openai_compat import ProfiledServer, Responder

__all__ = ["DEFAULT_MODEL", "VERSION", "FakeOllama", "ModelStore", "canonical"]

VERSION = "0.13.5"
DEFAULT_MODEL = "qwen3-coder:30b"
LAYERS = (
    ("sha256:" + "a" * 64, 4_000_000),
    ("sha256:" + "b" * 64, 1_000_000),
)


def canonical(name: str) -> str:
    """Ollama's full name: a model without a tag means ``:latest``."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


class ModelStore:
    """The models Ollama has on disk: ``models`` in memory, or manifests under ``models_dir``."""

    def __init__(self, models_dir: Path | None = None, models: Iterable[str] = ()) -> None:
        self.models_dir = models_dir
        self.models: list[str] = [canonical(m) for m in models]

    def _root(self) -> Path:
        assert self.models_dir is not None
        return self.models_dir / "manifests" / "registry.ollama.ai" / "library"

    def names(self) -> list[str]:
        if self.models_dir is None:
            return list(self.models)
        if not self._root().is_dir():
            return []
        return sorted(f"{p.parent.name}:{p.name}" for p in self._root().glob("*/*") if p.is_file())

    def add(self, name: str) -> None:
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


class FakeOllama(ProfiledServer):
    """One fake ``ollama serve``: ``/v1`` through its `OllamaProfile`, and the native API.

    Knobs beyond `ProfiledServer`'s: ``fail_pull`` ("error-line": an ``{"error"}`` line
    mid-pull; "http-500"; "engine-dies": the process SIGKILLs itself mid-pull, as the kernel's
    OOM killer does to a real engine), ``pull_delay`` (seconds between progress lines),
    ``fail_warm`` (loading the model fails), ``pull_log`` (a file every pull appends a line to,
    to count pulls across processes).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        models: Iterable[str] = (DEFAULT_MODEL,),
        models_dir: Path | None = None,
        id_pool: int = 999,
        context_length: int = 32768,
        seed: int = 7,
    ) -> None:
        self.store = ModelStore(models_dir, models)
        profile = OllamaProfile(
            self.store, id_pool=id_pool, context_length=context_length, seed=seed
        )
        super().__init__(profile, responder)
        self.profile: OllamaProfile = profile
        self.fail_pull: str | None = None
        self.pull_delay = 0.0
        self.fail_warm = False
        self.pull_log: Path | None = None
        self._pull_lock = threading.Lock()
        router = self.app.router
        router.add_get("/", self._root)
        router.add_get("/api/version", self._version)
        router.add_get("/api/tags", self._tags)
        router.add_post("/api/show", self._show)
        router.add_post("/api/pull", self._pull)
        router.add_post("/api/generate", self._generate)

    # -- the model store and what the tests read ----------------------------------------------

    @property
    def models(self) -> list[str]:
        """The models present (in memory: a list a test may change)."""
        return self.store.models if self.store.models_dir is None else self.store.names()

    @models.setter
    def models(self, names: Iterable[str]) -> None:
        self.store.models = [canonical(n) for n in names]

    def add_model(self, name: str) -> None:
        self.store.add(name)

    def has(self, name: str) -> bool:
        return self.store.has(name)

    def _bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.recorded if r.path == path]

    @property
    def pulls(self) -> list[str]:
        return [_model_of(b) for b in self._bodies("/api/pull")]

    @property
    def pull_count(self) -> int:
        return len(self.pulls)

    @property
    def warm_calls(self) -> list[dict[str, Any]]:
        return self._bodies("/api/generate")

    @property
    def show_calls(self) -> list[str]:
        return [_model_of(b) for b in self._bodies("/api/show")]

    @property
    def tags_calls(self) -> int:
        return len(self._bodies("/api/tags"))

    @property
    def version_calls(self) -> int:
        return len(self._bodies("/api/version"))

    # -- native routes ------------------------------------------------------------------------

    async def _root(self, _request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"version": VERSION})

    async def _tags(self, request: web.Request) -> web.Response:
        await self._record(request)
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": sum(s for _, s in LAYERS),
                "digest": "c" * 64,
                "details": {"format": "gguf", "family": "qwen3moe", "parameter_size": "30.5B"},
            }
            for name in self.store.names()
        ]
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        name = _model_of(await self._record(request))
        if not self.store.has(name):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response(
            {
                "modelfile": f"FROM {name}",
                "details": {"family": "qwen3moe", "quantization_level": "Q4_K_M"},
                "capabilities": ["completion", "tools"],
            }
        )

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        name = _model_of(await self._record(request))
        with self._pull_lock:
            if self.pull_log is not None:
                with self.pull_log.open("a") as handle:
                    handle.write(f"{os.getpid()} {name}\n")
        if self.fail_pull == "http-500":
            return web.json_response({"error": "registry unreachable"}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)

        async def send(event: dict[str, Any]) -> None:
            await response.write(json.dumps(event).encode() + b"\n")
            if self.pull_delay:
                await asyncio.sleep(self.pull_delay)

        await send({"status": "pulling manifest"})
        for index, (digest, size) in enumerate(LAYERS):
            step = size // 4
            for done in range(0, size + 1, step):
                progress = {"digest": digest, "total": size, "completed": done}
                await send({"status": f"pulling {digest[7:19]}", **progress})
                if self.fail_pull == "engine-dies" and index == 0 and done >= step:
                    os.kill(os.getpid(), signal.SIGKILL)
                if self.fail_pull == "error-line" and index == 0 and done >= step:
                    await send({"error": "max retries exceeded: connection reset by peer"})
                    await response.write_eof()
                    return response
        await send({"status": "verifying sha256 digest"})
        await send({"status": "writing manifest"})
        self.store.add(name)
        await send({"status": "success"})
        await response.write_eof()
        return response

    async def _generate(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        name = _model_of(body)
        if self.fail_warm:
            return web.json_response(
                {"error": "model requires more system memory than is available"}, status=500
            )
        if not self.store.has(name):
            return web.json_response(
                {"error": f"model '{name}' not found, try pulling it first"}, status=404
            )
        return web.json_response(
            {
                "model": name,
                "created_at": "2025-01-01T00:00:00Z",
                "response": "",
                "done": True,
                "done_reason": "load",
            }
        )

    async def _record(self, request: web.Request) -> Any:
        recorded = await record(request)
        self.recorded.append(recorded)
        return recorded.body


def _model_of(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    return str(body.get("model") or body.get("name") or "")
