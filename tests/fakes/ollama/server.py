"""`FakeOllama`: the OpenAI-compatible route (`OllamaProfile`) plus Ollama's native API.

Native routes as ``ollama serve`` answers them (ollama/ollama at v0.33.0-rc2, fb30760:
``server/routes.go``, ``api/types.go``); native errors are ``{"error": "<text>"}``:

- ``GET /`` ("Ollama is running"), ``GET /api/version``, ``GET /api/tags``;
- ``POST /api/show``: details, ``model_info`` (the GGUF keys: the *trained* context is
  ``<arch>.context_length``), ``capabilities``; 404 ``model 'NAME' not found``;
- ``POST /api/pull``: NDJSON progress lines; a failure mid-pull is an ``{"error"}`` line inside
  the 200 stream;
- ``POST /api/generate`` with an empty prompt, or ``POST /api/chat`` with no messages: load the
  model (``done_reason: "load"``);
- ``GET /api/ps``: the loaded models, each with ``context_length``, the context its runner
  really has (``server/sched.go``; ``llm/llama_server.go`` ``ContextLength``);
- ``POST /api/chat``: NDJSON (or one object with ``stream: false``), ``options.num_ctx`` and
  ``truncate`` honoured (models.py ``fit_prompt``); a failure after the first line is an
  ``{"error"}`` line, then the stream ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from tests.fakes.harness import record
from tests.fakes.ollama.models import (
    DEFAULT_MODEL,
    LAYERS,
    ModelCard,
    ModelStore,
    PromptTooLong,
    canonical,
    fit_prompt,
)
from tests.fakes.ollama.openai_route import OllamaProfile, responses
from tests.fakes.ollama.releases import CURRENT, Release
from tests.fakes.openai_compat import ProfiledServer, Responder

__all__ = ["FakeOllama"]

_CREATED_AT = "2025-01-01T00:00:00Z"
_FOREVER = "2318-01-01T00:00:00Z"  # keep_alive -1: loaded until the server stops


class FakeOllama(ProfiledServer):
    """One fake ``ollama serve``: ``/v1`` through its `OllamaProfile`, and the native API.

    Constructor knobs: ``release`` (releases.py: `CURRENT` or `OLLAMA_0_13_5`),
    ``context_length`` (``OLLAMA_CONTEXT_LENGTH``), ``vram_gib`` (the GPU memory it found),
    ``id_pool`` / ``ids`` (completion ids), ``models`` / ``models_dir`` (what it has).
    Attributes: ``fail_pull`` ("error-line": an ``{"error"}`` line mid-pull; "http-500";
    "engine-dies": the process SIGKILLs itself mid-pull, as the kernel's OOM killer does to a
    real engine), ``pull_delay`` (seconds between progress lines), ``fail_warm`` (loading
    fails), ``pull_log`` (a file every pull appends a line to, counting across processes).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        release: Release = CURRENT,
        models: Iterable[str] = (DEFAULT_MODEL,),
        models_dir: Path | None = None,
        context_length: int | None = None,
        vram_gib: float = 24.0,
        id_pool: int = 999,
        ids: Literal["counter", "uuid"] = "counter",
        seed: int = 7,
    ) -> None:
        self.store = ModelStore(models_dir, models)
        profile = OllamaProfile(
            self.store,
            release=release,
            context_length=context_length,
            vram_gib=vram_gib,
            id_pool=id_pool,
            ids=ids,
            seed=seed,
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
        router.add_get("/api/ps", self._ps)
        router.add_post("/api/show", self._show)
        router.add_post("/api/pull", self._pull)
        router.add_post("/api/generate", self._generate)
        router.add_post("/api/chat", self._native_chat)

    # -- the model store and what the tests read ----------------------------------------------

    @property
    def release(self) -> Release:
        return self.profile.release

    @property
    def models(self) -> list[str]:
        """The models present (in memory: a list a test may change)."""
        return self.store.models if self.store.models_dir is None else self.store.names()

    @models.setter
    def models(self, names: Iterable[str]) -> None:
        self.store.models = [canonical(n) for n in names]

    def add_model(self, name: str, card: ModelCard | None = None) -> None:
        self.store.add(name, card)

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

    async def _record(self, request: web.Request) -> Any:
        recorded = await record(request)
        self.recorded.append(recorded)
        return recorded.body

    async def _root(self, _request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"version": self.release.version})

    def _details(self, name: str) -> dict[str, Any]:
        card = self.store.card(name)
        return {
            "parent_model": "",
            "format": "gguf",
            "family": card.family,
            "families": [card.family],
            "parameter_size": card.parameter_size,
            "quantization_level": card.quantization,
        }

    async def _tags(self, request: web.Request) -> web.Response:
        await self._record(request)
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": _CREATED_AT,
                "size": sum(s for _, s in LAYERS),
                "digest": "c" * 64,
                "details": self._details(name),
            }
            for name in self.store.names()
        ]
        return web.json_response({"models": models})

    async def _ps(self, request: web.Request) -> web.Response:
        await self._record(request)
        models = [
            {
                "name": name,
                "model": name,
                "size": sum(s for _, s in LAYERS),
                "digest": "c" * 64,
                "details": self._details(name),
                "expires_at": _FOREVER,
                "size_vram": sum(s for _, s in LAYERS),
                "context_length": context,
            }
            for name, context in self.profile.loaded.items()
        ]
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        name = _model_of(await self._record(request))
        if not self.store.has(name):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        card = self.store.card(name)
        show: dict[str, Any] = {
            "modelfile": f"FROM {name}",
            "parameters": 'stop "<|im_end|>"',
            "details": self._details(name),
            "model_info": {
                "general.architecture": card.family,
                f"{card.family}.context_length": card.trained_context,
            },
            "capabilities": list(card.capabilities),
            "modified_at": _CREATED_AT,
        }
        if card.parser:
            show |= {"renderer": card.parser, "parser": card.parser}
        return web.json_response(show)

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

    def _load(self, name: str, options: Any) -> web.Response | None:
        """Load ``name`` (None) or the error a real load answers."""
        if self.fail_warm:
            return web.json_response(
                {"error": "model requires more system memory than is available"}, status=500
            )
        if not name:
            return web.json_response({"error": "model is required"}, status=400)
        if not self.store.has(name):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        num_ctx = options.get("num_ctx") if isinstance(options, dict) else None
        self.profile.loaded[canonical(name)] = self.profile.context_for(name, num_ctx)
        return None

    async def _generate(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        name = _model_of(body)
        refused = self._load(name, body.get("options") if isinstance(body, dict) else None)
        if refused is not None:
            return refused
        loaded = {"response": "", "done": True, "done_reason": "load"}
        return web.json_response({"model": name, "created_at": _CREATED_AT, **loaded})

    async def _native_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        body = body if isinstance(body, dict) else {}
        name = _model_of(body)
        options = body.get("options") or {}
        refused = self._load(name, options)
        if refused is not None:
            return refused
        head = {"model": name, "created_at": _CREATED_AT}
        messages = body.get("messages") or []
        if not messages:
            message = {"role": "assistant", "content": ""}
            return web.json_response(
                {**head, "message": message, "done": True, "done_reason": "load"}
            )
        try:
            fitted = fit_prompt(
                messages,
                self.profile.loaded[canonical(name)],
                self.store.card(name),
                self.release,
                truncate=body.get("truncate") is not False,
            )
        except PromptTooLong as refused_prompt:
            return web.json_response({"error": refused_prompt.body}, status=400)
        self.profile.truncated += fitted.cut
        answer = self.next_answer(body)
        usage = self.usage(fitted.tokens, answer)
        done = {
            **head,
            "done": True,
            "done_reason": answer.finish,
            "prompt_eval_count": usage["prompt_tokens"],
            "eval_count": usage["completion_tokens"],
        }
        lines = [
            {**head, "message": _native_message(piece), "done": False}
            for piece in responses(answer, self.release, self.profile.tool_call_id)
        ]
        if body.get("stream") is False:
            whole = _native_message({"content": answer.text, "thinking": answer.reasoning})
            calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
            if calls:
                whole["tool_calls"] = calls
            return web.json_response({**done, "message": whole})
        lines.append({**done, "message": {"role": "assistant", "content": ""}})
        return await self._ndjson(request, lines)

    async def _ndjson(
        self, request: web.Request, lines: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for index, line in enumerate(lines):
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await response.write(json.dumps(line).encode() + b"\n")
            if self.fail_mid_stream is not None and index == self.fail_after - 1:
                await response.write(json.dumps({"error": self.fail_mid_stream}).encode() + b"\n")
                break
        await response.write_eof()
        return response


def _native_message(piece: dict[str, Any]) -> dict[str, Any]:
    """``api.Message``: role, content, thinking (omitempty), tool_calls with object arguments."""
    message: dict[str, Any] = {"role": "assistant", "content": piece.get("content", "")}
    if piece.get("thinking"):
        message["thinking"] = piece["thinking"]
    calls = piece.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "function": {**c["function"], "arguments": _object(c["function"]["arguments"])},
            }
            for c in calls
        ]
    return message


def _object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _model_of(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    return str(body.get("model") or body.get("name") or "")
