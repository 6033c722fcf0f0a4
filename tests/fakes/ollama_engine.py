"""A fake of Ollama's NATIVE API on 127.0.0.1: /api/version, /api/tags, /api/show, /api/pull
(streamed NDJSON progress), /api/generate.

Two ways to run it:

* in-process, in a thread (the ``ollama_native_server`` fixture): models kept in memory, pulls
  counted on the object, knobs set as attributes;
* as the engine CHILD PROCESS of the real boot (``python -m tests.fakes.ollama_engine``), so the
  real subprocess path is exercised. Like ``ollama serve`` it listens on ``OLLAMA_HOST`` and
  keeps pulled models as manifest files under ``OLLAMA_MODELS``, so a second boot on the same
  volume finds them. Knobs come from the environment:

  FAKE_OLLAMA_PULL_LOG     file to which every pull request appends one line (counts pulls
                           across processes)
  FAKE_OLLAMA_FAIL_PULL    "error-line" (an {"error"} line mid-stream), "http-500",
                           "engine-dies" (the process SIGKILLs itself mid-pull, as the kernel's
                           OOM killer does to a real engine)
  FAKE_OLLAMA_PULL_DELAY   seconds between two progress lines (default 0.01)
  FAKE_OLLAMA_SIGNAL_LOG   file to which the child writes the name of a SIGTERM/SIGINT it gets
  FAKE_OLLAMA_READY_DELAY  seconds to wait before listening
  FAKE_OLLAMA_PID_FILE     file the child writes its pid to (to prove it is gone afterwards)
  FAKE_OLLAMA_STOP_DELAY   seconds between the first stop signal and the exit; later signals
                           are logged too. `ollama serve` handles SIGINT/SIGTERM by closing
                           its HTTP server, then unloading every runner (``sched.unloadAllRunners``
                           in ollama's server/routes.go ``Serve``) before it exits: with a 30B
                           model in GPU memory that takes a while

In engine mode, POST /__fake__/crash makes the child exit with code 7 (a crashed engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

VERSION = "0.13.5"
LAYERS = (
    ("sha256:" + "a" * 64, 4_000_000),
    ("sha256:" + "b" * 64, 1_000_000),
)


def canonical(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


@dataclass
class FakeOllama:
    """State and knobs of one fake Ollama. ``models_dir`` set: models persist as manifest files."""

    models_dir: Path | None = None
    url: str = ""
    pull_log: Path | None = None
    fail_pull: str | None = None
    pull_delay: float = 0.0
    fail_warm: bool = False
    models: set[str] = field(default_factory=set)
    pulls: list[str] = field(default_factory=list)
    warm_calls: list[dict[str, Any]] = field(default_factory=list)
    show_calls: list[str] = field(default_factory=list)
    tags_calls: int = 0
    version_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the model store -------------------------------------------------------------------
    def _manifest(self, name: str) -> Path:
        assert self.models_dir is not None
        model, tag = canonical(name).rsplit(":", 1)
        return self.models_dir / "manifests" / "registry.ollama.ai" / "library" / model / tag

    def present(self) -> list[str]:
        if self.models_dir is None:
            return sorted(self.models)
        root = self.models_dir / "manifests" / "registry.ollama.ai" / "library"
        if not root.is_dir():
            return []
        return sorted(f"{p.parent.name}:{p.name}" for p in root.glob("*/*") if p.is_file())

    def add_model(self, name: str) -> None:
        if self.models_dir is None:
            self.models.add(canonical(name))
            return
        path = self._manifest(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"layers": [{"digest": d, "size": s} for d, s in LAYERS]}))

    def has(self, name: str) -> bool:
        return canonical(name) in self.present()

    @property
    def pull_count(self) -> int:
        return len(self.pulls)

    # --- the HTTP application --------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/show", self._show)
        app.router.add_post("/api/pull", self._pull)
        app.router.add_post("/api/generate", self._generate)
        return app

    async def _root(self, _request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, _request: web.Request) -> web.Response:
        self.version_calls += 1
        return web.json_response({"version": VERSION})

    async def _tags(self, _request: web.Request) -> web.Response:
        self.tags_calls += 1
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": sum(s for _, s in LAYERS),
                "digest": "c" * 64,
                "details": {"format": "gguf", "family": "qwen3moe", "parameter_size": "30.5B"},
            }
            for name in self.present()
        ]
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("model") or body.get("name") or ""
        self.show_calls.append(name)
        if not self.has(name):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response(
            {
                "modelfile": f"FROM {name}",
                "details": {"family": "qwen3moe", "quantization_level": "Q4_K_M"},
                "capabilities": ["completion", "tools"],
            }
        )

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        name = body.get("model") or body.get("name") or ""
        with self._lock:
            self.pulls.append(name)
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
                await send(
                    {
                        "status": f"pulling {digest[7:19]}",
                        "digest": digest,
                        "total": size,
                        "completed": done,
                    }
                )
                if self.fail_pull == "engine-dies" and index == 0 and done >= step:
                    os.kill(os.getpid(), signal.SIGKILL)
                if self.fail_pull == "error-line" and index == 0 and done >= step:
                    await send({"error": "max retries exceeded: connection reset by peer"})
                    await response.write_eof()
                    return response
        await send({"status": "verifying sha256 digest"})
        await send({"status": "writing manifest"})
        self.add_model(name)
        await send({"status": "success"})
        await response.write_eof()
        return response

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.warm_calls.append(body)
        name = body.get("model", "")
        if self.fail_warm:
            return web.json_response(
                {"error": "model requires more system memory than is available"}, status=500
            )
        if not self.has(name):
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


async def _serve_as_engine() -> None:
    """Behave like `ollama serve`: OLLAMA_HOST, OLLAMA_MODELS, stop on SIGTERM / SIGINT."""
    host, _, port = (os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434").rpartition(":")
    fake = FakeOllama(
        models_dir=Path(os.environ["OLLAMA_MODELS"]),
        pull_log=Path(os.environ["FAKE_OLLAMA_PULL_LOG"])
        if os.environ.get("FAKE_OLLAMA_PULL_LOG")
        else None,
        fail_pull=os.environ.get("FAKE_OLLAMA_FAIL_PULL") or None,
        pull_delay=float(os.environ.get("FAKE_OLLAMA_PULL_DELAY") or 0.01),
    )
    signal_log = os.environ.get("FAKE_OLLAMA_SIGNAL_LOG")
    if os.environ.get("FAKE_OLLAMA_PID_FILE"):
        with open(os.environ["FAKE_OLLAMA_PID_FILE"], "w") as handle:  # noqa: ASYNC230 - before serving
            handle.write(str(os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if signal_log:
            with open(signal_log, "a") as handle:
                handle.write(f"{signal.Signals(signum).name}\n")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    with contextlib.suppress(TimeoutError):  # "loading": not listening yet; a signal still stops it
        await asyncio.wait_for(stop.wait(), float(os.environ.get("FAKE_OLLAMA_READY_DELAY") or 0))
    if not stop.is_set():
        app = fake.app()
        app.router.add_post("/__fake__/crash", _crash)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host.strip("[]") or "127.0.0.1", int(port)).start()
        await stop.wait()
    await asyncio.sleep(float(os.environ.get("FAKE_OLLAMA_STOP_DELAY") or 0))
    os._exit(0)  # like a real engine: in-flight pulls end with it


async def _crash(_request: web.Request) -> web.Response:
    """Die like a crashed engine (used to test the boot's watcher)."""
    asyncio.get_running_loop().call_later(0.05, os._exit, 7)
    return web.json_response({"crashing": True})


if __name__ == "__main__":
    asyncio.run(_serve_as_engine())
