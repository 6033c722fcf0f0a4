"""A small client for Ollama's native API, on an injected aiohttp session and base URL.

Only what the boot needs: /api/version (readiness), /api/tags and /api/show (is the model on the
volume?), /api/pull (streamed NDJSON progress), /api/generate with an empty prompt (load the
model into memory and keep it there) and /api/ps (the context the loaded model really has).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ccrelay_worker.errors import ModelPullError, ModelWarmError, OllamaAPIError
from ccrelay_worker.settings import normalize_model_name

__all__ = ["OllamaClient"]

_SHORT = aiohttp.ClientTimeout(total=10)


class OllamaClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base

    async def version(self, answer_within: float = 2.0) -> str:
        """Ollama's version; raises OllamaAPIError when it does not answer 200."""
        try:
            async with self._session.get(
                f"{self._base}/api/version", timeout=aiohttp.ClientTimeout(total=answer_within)
            ) as response:
                if response.status != 200:
                    raise OllamaAPIError(
                        f"GET /api/version answered HTTP {response.status}", response.status
                    )
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise OllamaAPIError(f"GET /api/version failed: {_describe(exc)}") from exc
        return str(body.get("version", "")) if isinstance(body, dict) else ""

    async def list_models(self) -> list[str]:
        """Names of the models Ollama has on disk (GET /api/tags)."""
        body = await self._get_json("/api/tags")
        models = body.get("models") if isinstance(body, dict) else None
        names: list[str] = []
        for item in models or []:
            if isinstance(item, dict):
                name = item.get("name") or item.get("model")
                if isinstance(name, str):
                    names.append(name)
        return names

    async def has_model(self, model: str) -> bool:
        """True when /api/tags lists the model and /api/show can read its manifest."""
        wanted = normalize_model_name(model)
        listed = {normalize_model_name(name) for name in await self.list_models()}
        if wanted not in listed:
            return False
        return await self.show(model) is not None

    async def show(self, model: str) -> dict[str, Any] | None:
        """The model's details (POST /api/show), or None when Ollama does not know it (404)."""
        try:
            async with self._session.post(
                f"{self._base}/api/show", json={"model": model}, timeout=_SHORT
            ) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise OllamaAPIError(
                        f"POST /api/show answered HTTP {response.status}: "
                        f"{await _error_text(response)}",
                        response.status,
                    )
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise OllamaAPIError(f"POST /api/show failed: {_describe(exc)}") from exc
        return body if isinstance(body, dict) else {}

    async def pull(
        self, model: str, *, read_timeout: float = 300.0
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream the pull's progress lines; raises ModelPullError on any failure.

        Lines look like ``{"status": "pulling <digest>", "digest": ..., "total": n,
        "completed": m}``; the last one is ``{"status": "success"}``. A line with ``error``
        (Ollama reports most failures that way, inside a 200 stream) raises.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        succeeded = False
        try:
            async with self._session.post(
                f"{self._base}/api/pull", json={"model": model, "stream": True}, timeout=timeout
            ) as response:
                if response.status != 200:
                    raise ModelPullError(
                        model,
                        f"HTTP {response.status}: {await _error_text(response)}",
                        response.status,
                    )
                async for raw in response.content:
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        raise ModelPullError(
                            model, "Ollama sent a progress line that is not JSON"
                        ) from None
                    if not isinstance(event, dict):
                        continue
                    if event.get("error"):
                        raise ModelPullError(model, str(event["error"]))
                    yield event
                    if event.get("status") == "success":
                        succeeded = True
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelPullError(model, f"the pull stream broke: {_describe(exc)}") from exc
        if not succeeded:
            raise ModelPullError(model, "the pull stream ended before Ollama reported success")

    async def warm(self, model: str, *, keep_alive: str | int, load_within: float) -> None:
        """Load the model into memory (empty prompt) and keep it there for ``keep_alive``."""
        payload = {"model": model, "prompt": "", "keep_alive": keep_alive, "stream": False}
        try:
            async with self._session.post(
                f"{self._base}/api/generate",
                json=payload,
                timeout=aiohttp.ClientTimeout(total=load_within),
            ) as response:
                if response.status != 200:
                    raise ModelWarmError(
                        model,
                        f"HTTP {response.status}: {await _error_text(response)}",
                        response.status,
                    )
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise ModelWarmError(model, _describe(exc)) from exc
        if isinstance(body, dict) and body.get("error"):
            raise ModelWarmError(model, str(body["error"]))

    async def loaded_context(self, model: str) -> int | None:
        """The context ``model`` was loaded with (GET /api/ps ``context_length``: the runner's
        per-request window, ollama/ollama ``server/sched.go``), or None when it is not loaded."""
        body = await self._get_json("/api/ps")
        wanted = normalize_model_name(model)
        for item in (body.get("models") if isinstance(body, dict) else None) or []:
            if not isinstance(item, dict):
                continue
            names = {normalize_model_name(str(item.get(k) or "")) for k in ("name", "model")}
            context = item.get("context_length")
            if wanted in names and isinstance(context, int) and context > 0:
                return context
        return None

    async def _get_json(self, path: str) -> Any:
        try:
            async with self._session.get(f"{self._base}{path}", timeout=_SHORT) as response:
                if response.status != 200:
                    raise OllamaAPIError(
                        f"GET {path} answered HTTP {response.status}: {await _error_text(response)}",
                        response.status,
                    )
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise OllamaAPIError(f"GET {path} failed: {_describe(exc)}") from exc


async def _error_text(response: aiohttp.ClientResponse) -> str:
    """Ollama's ``{"error": "..."}`` text, else the start of the body."""
    text = (await response.text()).strip()
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:300] or "(empty body)"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return text[:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
