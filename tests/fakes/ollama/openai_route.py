"""Ollama's OpenAI-compatible route (``/v1/chat/completions``, ``/v1/models``) as a `Profile`.

Every quirk is written here once; paths are ollama/ollama at v0.33.0-rc2 (fb30760), and
releases.py says what differed in 0.13.5:

- completion ids are ``chatcmpl-<rand 0..998>`` (``middleware/openai.go`` ``ChatWriter``), so
  they repeat (``id_pool`` narrows the range); ``ids="uuid"`` gives the UUID ids reported for
  releases around v0.40 (#18656, not in any source we could read);
- a stream is laid out by ``ChatWriter.writeResponse`` from the runner's responses
  (`responses`): see `OllamaProfile.chunks`; every chunk shares ``id``, ``created``, ``model``
  and ``system_fingerprint: "fp_ollama"``;
- a tool call arrives whole (the qwen3-coder parser buffers it to ``</tool_call>``), its
  arguments re-encoded as compact JSON (``openai.ToToolCalls``), its id ``call_`` and eight
  of ``[a-z0-9]`` (``server/routes.go`` ``toolCallId``);
- reasoning is ``reasoning``; ``tool_choice``, ``parallel_tool_calls``, ``top_k``, ``user``
  are ignored;
- images must be ``data:image/{jpeg,jpg,png,webp};base64,...`` or ``data:;base64,``
  (``openai.decodeImageURL``): anything else is a 400;
- a prompt longer than the context is fitted (models.py ``fit_prompt``) without a word, or
  refused with llama-server's raw body as the message;
- errors are ``{"error": {"message", "type", "param": null, "code": null}}``, the type from
  the status (``openai.NewError``); an unknown model is 404 ``model 'NAME' not found``
  (``server/routes.go`` ``ChatHandler``);
- an error after the stream began (``server/routes.go`` ``streamResponse`` writes a native
  ``{"error"}`` line, which the writer decodes as an empty response) reaches the client as one
  empty-content chunk with ``model: ""``; then the stream stops: no finish chunk, no
  ``[DONE]``, and the error text only in Ollama's own log (`server_log`).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import uuid
from typing import Any, Literal

from tests.fakes.ollama.models import (
    ModelStore,
    PromptTooLong,
    canonical,
    default_context,
    fit_prompt,
)
from tests.fakes.ollama.releases import CURRENT, Release
from tests.fakes.openai_compat import Answer, Profile, Refusal, words

__all__ = ["OllamaProfile", "responses"]

_DATA_URL = re.compile(r"^data:(image/(jpeg|jpg|png|webp))?;base64,")
_ID_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def _compact(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return arguments


def responses(answer: Answer, release: Release, call_id: Any) -> list[dict[str, Any]]:
    """The runner's responses for ``answer`` as native messages (``thinking``, ``content``,
    ``tool_calls``): a piece per word, the last reasoning word sharing a response with what
    follows it (one token can end the thinking and start the text), each tool call whole,
    numbered as the release's parser numbers them. ``call_id()`` makes each call's id."""
    pieces: list[dict[str, Any]] = [{"thinking": w} for w in words(answer.reasoning)]
    pieces += [{"content": w} for w in words(answer.text)]
    for index, (name, arguments) in enumerate(answer.tool_calls):
        function = {
            "index": index if release.stable_tool_indexes else 0,
            "name": name,
            "arguments": _compact(arguments),
        }
        pieces.append({"tool_calls": [{"id": call_id(), "function": function}]})
    thinking = len(words(answer.reasoning))
    if 0 < thinking < len(pieces):
        pieces[thinking - 1 : thinking + 1] = [{**pieces[thinking - 1], **pieces[thinking]}]
    return pieces


def _openai_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": call["id"],
            "index": call["function"]["index"],
            "type": "function",
            "function": {
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            },
        }
        for call in calls
    ]


class OllamaProfile(Profile):
    """What Ollama does its own way on ``/v1``; its models are those in ``model_store``.

    ``context_length`` is ``OLLAMA_CONTEXT_LENGTH`` (None: unset), ``vram_gib`` the total GPU
    memory the server found at start (it picks the default context).
    """

    name = "ollama"

    def __init__(
        self,
        model_store: ModelStore,
        *,
        release: Release = CURRENT,
        context_length: int | None = None,
        vram_gib: float = 24.0,
        id_pool: int = 999,
        ids: Literal["counter", "uuid"] = "counter",
        seed: int = 7,
    ) -> None:
        super().__init__()
        self.model_store = model_store
        self.release = release
        self.context_length = context_length
        self.vram_gib = vram_gib
        self.id_pool = id_pool
        self.ids = ids
        self._random = random.Random(seed)
        self.truncated = 0  # prompts cut so far
        self.server_log: list[str] = []  # errors Ollama writes only to its own log
        self.loaded: dict[str, int] = {}  # model -> the context its runner was started with

    @property
    def models(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.model_store.names())

    def context_for(self, model: str, num_ctx: int | None = None) -> int:
        """The context ``model`` runs with (a request's ``num_ctx`` first)."""
        wanted = num_ctx or default_context(
            self.release, context_length=self.context_length, vram_gib=self.vram_gib
        )
        return min(wanted, self.model_store.card(model).trained_context)

    def completion_id(self) -> str:
        if self.ids == "uuid":
            return f"chatcmpl-{uuid.UUID(int=self._random.getrandbits(128), version=4)}"
        return f"chatcmpl-{self._random.randrange(self.id_pool)}"

    def tool_call_id(self, index: int = 0) -> str:
        return "call_" + "".join(self._random.choice(_ID_LETTERS) for _ in range(8))

    def status_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def _refuse(self, status: int, message: str) -> Refusal:
        return Refusal(status, self.status_error(status, message))

    def check(self, body: dict[str, Any]) -> None:
        if not body.get("messages"):
            raise self._refuse(400, "[] is too short - 'messages'")
        for message in body["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    self._check_image(part.get("image_url"))
        model = str(body.get("model") or "")
        if not model:
            raise self._refuse(400, "model is required")
        if not self.model_store.has(model):
            raise self._refuse(404, f"model '{model}' not found")

    def _check_image(self, image_url: Any) -> None:
        url = image_url.get("url", "") if isinstance(image_url, dict) else str(image_url or "")
        if self.release.url_image_message and url.startswith(("http://", "https://")):
            raise self._refuse(
                400,
                "image URLs are not currently supported, please use base64 encoded data instead",
            )
        match = _DATA_URL.match(url)
        try:
            if match is None:
                raise ValueError(url)
            base64.b64decode(url[match.end() :], validate=True)
        except (ValueError, binascii.Error):
            raise self._refuse(400, "invalid image input") from None

    def seen(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        model = str(body["model"])
        context = self.loaded.setdefault(canonical(model), self.context_for(model))
        try:
            fitted = fit_prompt(
                body["messages"],
                context,
                self.model_store.card(model),
                self.release,
            )
        except PromptTooLong as refused:
            raise self._refuse(400, refused.body) from None
        self.truncated += fitted.cut
        return fitted.messages, fitted.tokens

    def head(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**super().head(body), "system_fingerprint": "fp_ollama"}

    def completion(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int]
    ) -> dict[str, Any]:
        calls = [
            c
            for r in responses(answer, self.release, self.tool_call_id)
            for c in r.get("tool_calls", [])
        ]
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.reasoning:
            message["reasoning"] = answer.reasoning
        if calls:
            message["tool_calls"] = _openai_calls(calls)
        finish = answer.finish
        if calls and (finish == "stop" or not self.release.split_stream):
            finish = "tool_calls"  # since v0.32.6 only over "stop"
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return {**head, "object": "chat.completion", "choices": [choice], "usage": usage}

    def chunks(
        self, head: dict[str, Any], answer: Answer, usage: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        """``ChatWriter.writeResponse`` over the runner's responses (see releases.py for 0.13.5)."""
        base = {**head, "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out: list[dict[str, Any]] = []
        sent_call = False
        for response in responses(answer, self.release, self.tool_call_id):
            calls = _openai_calls(response.get("tool_calls", []))
            sent_call = sent_call or bool(calls)
            thinking = response.get("thinking", "")
            content = response.get("content", "")
            if not self.release.split_stream:  # Message: role and content on every chunk
                delta: dict[str, Any] = {"role": "assistant", "content": content}
                out.append(chunk(delta | _optional(thinking, calls)))
                continue
            role = {} if out else {"role": "assistant"}
            if thinking and (content or calls) and self.release.split_reasoning:
                out.append(chunk(role | {"reasoning": thinking}))  # content omitted (nil)
                out.append(chunk({"content": content} | _optional("", calls)))
            else:
                out.append(chunk(role | {"content": content} | _optional(thinking, calls)))
        if self.release.split_stream:
            if not out:  # a wholly empty completion still opens with a role chunk
                out.append(chunk({"role": "assistant", "content": ""}))
            finish = "tool_calls" if sent_call and answer.finish == "stop" else answer.finish
            done = chunk({}, finish)
        else:
            done = chunk(
                {"role": "assistant", "content": ""}, "tool_calls" if sent_call else answer.finish
            )
        out.append(done)
        if usage is not None:
            out.append({**done, "choices": [], "usage": usage})
        return out

    def mid_stream_error(self, head: dict[str, Any], message: str) -> list[bytes]:
        self.server_log.append(message)
        delta = (
            {"content": ""} if self.release.split_stream else {"role": "assistant", "content": ""}
        )
        chunk = {
            **head,
            "object": "chat.completion.chunk",
            "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        return [f"data: {json.dumps(chunk)}\n\n".encode()]

    def models_body(self) -> dict[str, Any]:
        # created is the model's modified time (server/routes.go ListHandler): the fake's models
        # were all pulled at 2025-01-01T00:00:00Z, as /api/tags says
        data = [
            {"id": m, "object": "model", "created": 1735689600, "owned_by": "library"}
            for m in self.model_store.names()
        ]
        return {"object": "list", "data": data}


def _optional(thinking: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Delta fields Ollama omits when empty (``openai.Delta``: omitempty)."""
    extra: dict[str, Any] = {}
    if thinking:
        extra["reasoning"] = thinking
    if calls:
        extra["tool_calls"] = calls
    return extra
