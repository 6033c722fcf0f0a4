"""OpenAI streamed chunks <-> one chat completion, so streamed and plain requests share a cache entry.

``CompletionAssembler`` folds the ``chat.completion.chunk`` objects of a stream into the
``chat.completion`` the same request would have returned unstreamed. It takes each field from
whichever chunk carries it, so it reads Ollama's current layout (role only on the first chunk,
``finish_reason`` on a chunk of its own with an empty delta, usage on a trailing ``choices:
[]`` chunk; ollama/ollama ``middleware/openai.go`` since v0.32.6) as well as the older one
(role on every chunk, ``finish_reason`` on the last content chunk). Tool calls are keyed by
their ``index``, except that a call arriving with an id different from the call already at
its index is a new call: Ollama before v0.17.4 sent every whole tool call with ``index: 0``.

``replay_chunks`` turns a stored completion back into a stream laid out as Ollama lays one
out now: the role in the first chunk with the first text, the reasoning before the content,
one chunk per tool call (indexes 0, 1, 2...), the finish chunk and, when asked for, the usage
chunk. ``sse_event`` frames one payload the way OpenAI's SSE does.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SSE_DONE", "CompletionAssembler", "replay_chunks", "sse_event"]

SSE_DONE = "data: [DONE]\n\n"

_TOP_LEVEL = ("id", "created", "model", "system_fingerprint")


def sse_event(payload: dict[str, Any]) -> str:
    """One OpenAI SSE event: ``data: {json}`` and a blank line."""
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


class _Choice:
    __slots__ = ("at_index", "finish_reason", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.text: dict[str, list[str]] = {}  # "content", "reasoning", ... -> pieces
        self.tool_calls: list[dict[str, Any]] = []
        self.at_index: dict[int, int] = {}  # a call's stream index -> its place in tool_calls
        self.finish_reason: str | None = None

    def add(self, delta: dict[str, Any]) -> None:
        for name, value in delta.items():
            if name == "role":
                self.role = self.role or value
            elif name == "tool_calls":
                for position, call in enumerate(value or ()):
                    self._add_tool_call(call, position)
            elif isinstance(value, str):
                self.text.setdefault(name, []).append(value)

    def _add_tool_call(self, call: dict[str, Any], position: int) -> None:
        index = call.get("index", position)
        place = self.at_index.get(index)
        merged = None if place is None else self.tool_calls[place]
        if merged is None or (call.get("id") and merged["id"] and call["id"] != merged["id"]):
            merged = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            self.at_index[index] = len(self.tool_calls)
            self.tool_calls.append(merged)
        if call.get("id"):
            merged["id"] = merged["id"] or call["id"]
        if call.get("type"):
            merged["type"] = call["type"]
        function = call.get("function") or {}
        if function.get("name") and not merged["function"]["name"]:
            merged["function"]["name"] = function["name"]
        if function.get("arguments"):
            merged["function"]["arguments"] += function["arguments"]

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role or "assistant", "content": ""}
        for name, pieces in self.text.items():
            message[name] = "".join(pieces)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class CompletionAssembler:
    """Feed every chunk of one stream to ``add``; ``completion()`` is the equivalent completion."""

    def __init__(self) -> None:
        self._top: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self._usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        for name in _TOP_LEVEL:
            if name not in self._top and chunk.get(name) is not None:
                self._top[name] = chunk[name]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for position, choice in enumerate(chunk.get("choices") or ()):
            index = choice.get("index", position)
            state = self._choices.setdefault(index, _Choice())
            state.add(choice.get("delta") or {})
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        completion: dict[str, Any] = {
            "id": self._top.get("id", ""),
            "object": "chat.completion",
            "created": self._top.get("created", 0),
            "model": self._top.get("model", ""),
        }
        if "system_fingerprint" in self._top:
            completion["system_fingerprint"] = self._top["system_fingerprint"]
        completion["choices"] = [
            {
                "index": index,
                "message": self._choices[index].message(),
                "finish_reason": self._choices[index].finish_reason,
            }
            for index in sorted(self._choices)
        ]
        if self._usage is not None:
            completion["usage"] = self._usage
        return completion


def replay_chunks(
    completion: dict[str, Any], *, include_usage: bool = True
) -> list[dict[str, Any]]:
    """The chunks of a stream that would have assembled into ``completion``."""
    base: dict[str, Any] = {
        "id": completion.get("id", ""),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    if "system_fingerprint" in completion:
        base["system_fingerprint"] = completion["system_fingerprint"]

    def chunk(
        index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
        }

    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(completion.get("choices") or ()):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        deltas: list[dict[str, Any]] = [
            {name: value}
            for name, value in message.items()
            if name not in ("role", "content") and isinstance(value, str) and value
        ]
        if isinstance(message.get("content"), str) and message["content"]:
            deltas.append({"content": message["content"]})
        for call_index, call in enumerate(message.get("tool_calls") or ()):
            deltas.append({"tool_calls": [{**call, "index": call_index}]})
        first = {"role": message.get("role", "assistant")}
        deltas[:1] = [first | (deltas[0] if deltas else {"content": ""})]
        chunks += [chunk(index, delta) for delta in deltas]
        chunks.append(chunk(index, {}, choice.get("finish_reason") or "stop"))
    if include_usage and completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
