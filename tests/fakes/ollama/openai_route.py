"""Ollama's OpenAI-compatible route (``/v1/chat/completions``, ``/v1/models``) as a `Profile`.

Each quirk is written here once, with where it comes from in ollama/ollama (v0.13.5):

- completion ids are ``chatcmpl-<rand 0..998>`` (``middleware/openai.go``, ``ChatWriter``), so
  they repeat; ``id_pool`` narrows the range to make a test see repeats sooner;
- every chunk carries ``"role": "assistant"`` and ``content``; a tool call arrives whole, in one
  chunk; ``finish_reason`` rides on the last (done) chunk; with ``include_usage`` one more
  chunk copies it with ``choices: []`` and the usage (``openai/openai.go`` ``ToChunk``);
- reasoning is ``reasoning``; ``system_fingerprint`` is ``fp_ollama``;
- ``tool_choice``, ``parallel_tool_calls``, ``top_k``, ``user`` are ignored;
- images must be ``data:image/{jpeg,jpg,png,webp};base64,...`` (or ``data:;base64,``):
  anything else, URLs and GIFs included, fails with "invalid image input"
  (``openai/openai.go`` ``decodeImageURL``);
- the qwen3-coder renderer keeps only the first system message
  (``model/renderers/qwen3coder.go``);
- a prompt longer than ``context_length`` tokens is silently cut from the front (the oldest
  messages after the system message go, ``server/prompt.go`` ``chatPrompt``) and
  ``prompt_tokens`` counts what was kept;
- errors are ``{"error": {"message", "type", "param": null, "code": null}}`` with the type
  from the status (``openai.NewError``).
"""

from __future__ import annotations

import json
import random
import re
from typing import TYPE_CHECKING, Any

from tests.fakes.openai_compat import Answer, Profile, Refusal, chars_to_tokens, words

if TYPE_CHECKING:
    from tests.fakes.ollama.server import ModelStore

__all__ = ["OllamaProfile"]

_IMAGE = re.compile(r"^data:(image/(jpeg|jpg|png|webp))?;base64,")


class OllamaProfile(Profile):
    """What Ollama does its own way on ``/v1``; the models are those in ``store``."""

    name = "ollama"

    def __init__(
        self,
        model_store: ModelStore,
        *,
        id_pool: int = 999,
        context_length: int = 32768,
        seed: int = 7,
    ) -> None:
        super().__init__()
        self.model_store = model_store
        self.id_pool = id_pool
        self.context_length = context_length
        self._random = random.Random(seed)
        self.truncated = 0  # prompts cut so far

    @property
    def models(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.model_store.names())

    def completion_id(self) -> str:
        return f"chatcmpl-{self._random.randrange(self.id_pool)}"

    def status_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def check(self, body: dict[str, Any]) -> None:
        model = str(body.get("model") or "")
        if not self.model_store.has(model):
            message = f'model "{model}" not found, try pulling it first'
            raise Refusal(404, self.status_error(404, message))
        for message in body.get("messages") or []:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    if not _IMAGE.match(url):
                        raise Refusal(400, self.status_error(400, "invalid image input"))

    def seen(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        messages = body.get("messages") or []
        systems = [m for m in messages if m.get("role") == "system"]
        rest = [m for m in messages if m.get("role") != "system"]
        kept = systems[:1] + rest  # the renderer keeps the first system message only
        tokens = sum(chars_to_tokens(json.dumps(m)) for m in kept)
        cut = False
        while tokens > self.context_length and len(kept) > 2:
            dropped = kept.pop(1 if kept[0].get("role") == "system" else 0)
            tokens -= chars_to_tokens(json.dumps(dropped))
            cut = True
        self.truncated += cut
        return kept, tokens

    def head(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**super().head(body), "system_fingerprint": "fp_ollama"}

    def tool_call_pieces(self, arguments: str) -> list[str]:
        return [arguments]  # whole, in one chunk

    def chunks(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        base = {**head, "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            delta = {"role": "assistant", "content": "", **delta}
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        chunks = [chunk({"reasoning": w}) for w in words(answer.reasoning)]
        chunks += [chunk({"content": w}) for w in words(answer.text)]
        for index, (name, arguments) in enumerate(answer.tool_calls):
            call = {
                "id": self.tool_call_id(index),
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            chunks.append(chunk({"tool_calls": [call]}))
        done = chunk({}, self.finish_reason(answer))
        chunks.append(done)
        if usage is not None:
            chunks.append({**done, "choices": [], "usage": usage})
        return chunks

    def mid_stream_error(self, head: dict[str, Any], message: str) -> list[bytes]:
        error = {"error": {"message": message, "type": "api_error"}}
        return [f"data: {json.dumps(error)}\n\n".encode()]

    def models_body(self) -> dict[str, Any]:
        # created is the model's modified time (server/routes.go ListHandler): the fake's models
        # were all pulled at 2025-01-01T00:00:00Z, as /api/tags says
        data = [
            {"id": m, "object": "model", "created": 1735689600, "owned_by": "library"}
            for m in self.model_store.names()
        ]
        return {"object": "list", "data": data}
