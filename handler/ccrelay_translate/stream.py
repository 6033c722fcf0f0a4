"""OpenAI chat-completion chunks -> Anthropic Messages stream events, statefully.

Anthropic streams one content block at a time (start, deltas, stop, then the next, indexes in
order); OpenAI streams text and any number of tool calls, each tool call's ``arguments`` in
pieces keyed by ``index``, in principle interleaved. The translator keeps the blocks in order
of first appearance and streams the *live* one (the first not yet closed) as it comes. A later
block's pieces are held until it becomes live. The live block closes when a later block
appears and it is complete: text always is; a tool call is once its arguments parse as JSON.
So interleaved calls lose nothing: a tool call whose arguments are still partial stays live and
the others wait. At the finish_reason every block is closed in order.

- A tool call's arguments are held until it closes, then sent as ONE ``input_json_delta``:
  the text as the model wrote it when it is a JSON object, else the JSON of the same repair
  the non-streamed path makes (`tool_input`: ``{"_raw_arguments": "<text>"}`` for broken JSON,
  the decoded object for double-encoded JSON). Streamed piece by piece, a cut-off or broken
  text could never be taken back, and Claude Code would get a tool input that is not JSON.
  `repaired_tool_calls` counts the repairs; each is logged (``ccrelay.translate``), without
  the arguments.
- A tool call is found by ``index``; a new ``id`` at a known index (Ollama numbers every call
  0, ollama/ollama#15457) starts a new call; so does a payload arriving at an index whose call
  is already complete JSON: more arguments, or another name (some upstreams stream a second
  call at the same index with no new id, or with the same one: dyedd/lens#49, and LiteLLM's
  ``ChunkProcessor.get_combined_tool_content`` in
  ``litellm/litellm_core_utils/streaming_chunk_builder_utils.py`` would glue the two into
  ``{...}{...}``). The same id repeated on every chunk of one call (vLLM, spring-ai#6000) is no
  new call. Without an index, a call is found by ``id``, else it is the latest call. A missing
  id is generated; a name arriving after the arguments is waited for; a call whose name never
  comes closes as `UNNAMED_TOOL`. Ids and names are mapped as in `ccrelay_translate.naming`
  (reversibly encoded ids, shortened names restored by ``tool_names``), and an id already used
  in this message (vLLM's kimi_k2 ids repeat, vllm-project/vllm#33141) is replaced by a fresh
  one.
- ``reasoning`` / ``reasoning_content`` deltas become a ``thinking`` block, streamed as
  ``thinking_delta`` events and closed with a ``signature_delta``, as Anthropic streams them
  for the request's ``thinking_display``: ``omitted`` sends the block without its text,
  ``none`` (thinking not asked for) sends no block. Reasoning never goes into a text block.
  Choices other than 0 and anything after the finish_reason are ignored; empty or null
  ``choices`` are fine.
- ``message_start`` carries a fresh ``msg_`` id, never the upstream's (`new_message_id`).
- Usage: with ``include_usage`` the real counts come in a usage-only chunk AFTER the
  finish_reason chunk. So ``message_delta`` + ``message_stop`` go out once both a
  finish_reason and a ``usage`` have been seen (same chunk or later), or at `finish`. The
  ``message_delta`` usage has the real ``output_tokens`` and ``input_tokens`` (see
  `ccrelay_translate.usage`); without usage from the server, ``output_tokens`` is estimated as
  characters / 4 and ``input_tokens`` is left to ``message_start``'s estimate.
- `finish` on a stream that ended without a finish_reason still closes every block (tool
  arguments received so far included) and ends the message (stop_reason ``tool_use`` when tool
  calls were seen, else ``end_turn``); `finished_cleanly` tells such a truncated stream apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ccrelay_translate._common import (
    THINKING_SIGNATURE,
    compact_json,
    is_complete_json,
    log_repair,
    matched_stop_sequence,
    new_message_id,
    new_tool_use_id,
    reasoning_text,
    stop_reason_for,
    tool_input,
)
from ccrelay_translate.errors import MalformedReply, brief, clipped
from ccrelay_translate.naming import anthropic_tool_id, restore_tool_name
from ccrelay_translate.usage import anthropic_usage


class _Block:
    __slots__ = (
        "arguments",
        "call_id",
        "checked",
        "index",
        "kind",
        "name",
        "pending",
        "started",
    )

    def __init__(self, kind: str, call_id: str = "", name: str = "") -> None:
        self.kind = kind  # "text", "thinking" or "tool_use"
        self.call_id = call_id  # the upstream's id ("" when it sent none)
        self.name = name
        self.arguments = ""  # all the arguments so far (tool_use), sent at the stop
        self.pending: list[str] = []  # text or thinking pieces not yet sent
        self.started = False
        self.index = -1  # the Anthropic content index, once started
        self.checked = (-1, False)  # (length of arguments checked, whether complete JSON)

    def complete(self) -> bool:
        """Whether the arguments so far are whole JSON (checked once per new length, and only
        when they end like an object, so a long argument text is not parsed on every piece)."""
        size = len(self.arguments)
        if self.checked[0] != size:
            text = self.arguments.rstrip()
            done = text.endswith("}") and is_complete_json(text)
            self.checked = (size, done)
        return self.checked[1]


class OpenAIStreamTranslator:
    """Feed it each decoded chunk (`feed`), then call `finish` at the end of the stream."""

    def __init__(
        self,
        model: str,
        *,
        message_id: str | None = None,
        input_tokens_estimate: int = 0,
        backend: str = "upstream",
        thinking_display: str = "none",
        tool_names: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.thinking_display = thinking_display
        self.message_id = message_id
        self.backend = backend
        self.tool_names = tool_names
        """Names shortened for the upstream -> the originals (`naming.tool_name_map`)."""
        self.repaired_tool_calls = 0
        """Tool calls whose arguments were not a JSON object and were sent repaired."""
        self._input_estimate = input_tokens_estimate
        self._started = False
        self._ended = False
        self._blocks: list[_Block] = []
        self._live = 0  # position in _blocks of the first block not closed
        self._next_index = 0
        self._calls: dict[Any, _Block] = {}  # by OpenAI index, and by ("id", call id)
        self._tool_ids: set[str] = set()
        self._finish_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, int] = {}
        self._output_chars = 0

    @property
    def finished_cleanly(self) -> bool:
        """True once a finish_reason was seen; False for a stream cut short."""
        return self._finish_reason is not None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The Anthropic events this chunk completes (possibly none)."""
        if not isinstance(chunk, dict):
            raise MalformedReply(self.backend, "a stream chunk is not a JSON object")
        events: list[dict[str, Any]] = []
        if not self._started:
            events.append(self._message_start())
        if self._ended:
            return events
        error = chunk.get("error")
        if error is not None:
            detail = error.get("message") if isinstance(error, dict) else error
            raise MalformedReply(self.backend, f"the stream carried an error: {clipped(detail)}")
        choices = chunk.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list):
            raise MalformedReply(self.backend, "a stream chunk's choices is not a list")
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                self._choice(choice, events)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage.update(anthropic_usage(usage, self.backend))
            if self._finish_reason is not None:
                self._end(events)
        return events

    def finish(self) -> list[dict[str, Any]]:
        """End of stream: close what is open and end the message (no-op if already ended)."""
        events: list[dict[str, Any]] = []
        if not self._started:
            events.append(self._message_start())
        if not self._ended:
            self._end(events)
        return events

    # -- chunks -------------------------------------------------------------------------

    def _choice(self, choice: dict[str, Any], events: list[dict[str, Any]]) -> None:
        if self._finish_reason is not None:
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = reasoning_text(delta)
            if reasoning and self.thinking_display != "none":
                self._thinking(reasoning, events)
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._text(text, events)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    self._tool_call(call, events)
            legacy = delta.get("function_call")
            if isinstance(legacy, dict):
                self._tool_call({"index": "function_call", "function": legacy}, events)
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str) and finish_reason:
            self._finish_reason = finish_reason
            self._stop_sequence = matched_stop_sequence(choice)
            self._close_all(events)

    def _text(self, text: str, events: list[dict[str, Any]]) -> None:
        self._output_chars += len(text)
        last = self._blocks[-1] if self._blocks else None
        if last is None or last.kind != "text":
            last = _Block("text")
            self._append(last, events)
        self._push(last, text, events)

    def _thinking(self, text: str, events: list[dict[str, Any]]) -> None:
        self._output_chars += len(text)
        last = self._blocks[-1] if self._blocks else None
        if last is None or last.kind != "thinking":
            last = _Block("thinking")
            self._append(last, events)
        if self.thinking_display == "summarized":
            self._push(last, text, events)

    def _tool_call(self, call: object, events: list[dict[str, Any]]) -> None:
        if not isinstance(call, dict):
            raise MalformedReply(self.backend, "a streamed tool call is not an object")
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise MalformedReply(self.backend, "a streamed tool call's function is not an object")
        key = call.get("index")
        if isinstance(key, bool) or not isinstance(key, int | str):
            key = None
        raw_id, raw_name = call.get("id"), function.get("name")
        call_id = raw_id if isinstance(raw_id, str) else ""
        name = raw_name if isinstance(raw_name, str) else ""
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            # a few servers send the arguments object itself
            arguments = compact_json(arguments)

        block = self._find_call(key, call_id)
        previous = None
        if block is not None and self._starts_another(block, name, arguments):
            previous, block = block, None
        if block is None:
            # a second call at a reused index without a name of its own is the same tool's
            inherited = previous.name if previous is not None and not name else name
            block = _Block("tool_use", call_id, inherited)
            if key is not None:
                self._calls[key] = block
            if call_id:
                self._calls["id", call_id] = block
            self._append(block, events)
        elif name and not block.name:
            block.name = name
            self._advance(events)
        if arguments:
            self._output_chars += len(arguments)
            block.arguments += arguments
            self._advance(events)

    def _find_call(self, key: Any, call_id: str) -> _Block | None:
        if key is not None:
            block = self._calls.get(key)
            if block is not None and call_id and call_id != block.call_id:
                return None  # a new call reusing the index
            return block
        if call_id:
            return self._calls.get(("id", call_id))
        tools = [b for b in self._blocks if b.kind == "tool_use"]
        return tools[-1] if tools else None

    @staticmethod
    def _starts_another(block: _Block, name: str, arguments: str | None) -> bool:
        """Whether a payload for a call that is already whole JSON is a second call: more
        arguments could only break it, a different name cannot be its own."""
        more = bool(arguments and arguments.strip())
        renamed = bool(name and block.name and name != block.name)
        return (more or renamed) and block.complete()

    # -- blocks -------------------------------------------------------------------------

    def _append(self, block: _Block, events: list[dict[str, Any]]) -> None:
        self._blocks.append(block)
        self._advance(events)

    def _push(self, block: _Block, piece: str, events: list[dict[str, Any]]) -> None:
        if block.started and self._live < len(self._blocks) and self._blocks[self._live] is block:
            events.append(self._delta(block, piece))
        else:
            block.pending.append(piece)

    def _advance(self, events: list[dict[str, Any]]) -> None:
        """Start the live block if it can be; close it while a later block waits and it is done."""
        while self._live < len(self._blocks):
            block = self._blocks[self._live]
            if not block.started and not self._start(block, events, force=False):
                return
            if self._live == len(self._blocks) - 1:
                return
            if block.kind == "tool_use" and not block.complete():
                return
            self._stop(block, events)
            self._live += 1

    def _start(self, block: _Block, events: list[dict[str, Any]], *, force: bool) -> bool:
        if block.kind == "tool_use" and not block.name and not force:
            return False  # content_block_start needs the name: wait for it
        block.index = self._next_index
        self._next_index += 1
        block.started = True
        if block.kind == "text":
            content_block: dict[str, Any] = {"type": "text", "text": ""}
        elif block.kind == "thinking":
            content_block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            content_block = {
                "type": "tool_use",
                "id": self._tool_id(block.call_id),
                "name": restore_tool_name(block.name, self.tool_names),
                "input": {},
            }
        events.append(
            {"type": "content_block_start", "index": block.index, "content_block": content_block}
        )
        if block.pending:
            events.append(self._delta(block, "".join(block.pending)))
            block.pending.clear()
        return True

    def _tool_id(self, call_id: str) -> str:
        tool_id = anthropic_tool_id(call_id) if call_id else ""
        if not tool_id or tool_id in self._tool_ids:
            tool_id = new_tool_use_id()
        self._tool_ids.add(tool_id)
        return tool_id

    def _delta(self, block: _Block, piece: str) -> dict[str, Any]:
        if block.kind == "text":
            delta = {"type": "text_delta", "text": piece}
        elif block.kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": piece}
        else:
            delta = {"type": "input_json_delta", "partial_json": piece}
        return {"type": "content_block_delta", "index": block.index, "delta": delta}

    def _close_all(self, events: list[dict[str, Any]]) -> None:
        for block in self._blocks[self._live :]:
            if not block.started:
                self._start(block, events, force=True)
            self._stop(block, events)
        self._live = len(self._blocks)

    def _stop(self, block: _Block, events: list[dict[str, Any]]) -> None:
        if block.kind == "thinking":
            signature = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
            events.append({"type": "content_block_delta", "index": block.index, "delta": signature})
        elif block.kind == "tool_use":
            events.append(self._delta(block, self._input_json(block)))
        events.append({"type": "content_block_stop", "index": block.index})

    def _input_json(self, block: _Block) -> str:
        """The whole input of a tool call: its arguments as written when they are a JSON object,
        else the JSON of their repair (the same as a non-streamed reply's)."""
        value, repaired = tool_input(block.arguments)
        if repaired:
            self.repaired_tool_calls += 1
            log_repair(
                self.backend, brief(restore_tool_name(block.name, self.tool_names)), block.arguments
            )
        elif block.arguments.lstrip().startswith("{"):
            return block.arguments
        return compact_json(value)

    # -- message ------------------------------------------------------------------------

    def _message_start(self) -> dict[str, Any]:
        self._started = True
        if self.message_id is None:
            self.message_id = new_message_id()
        return {
            "type": "message_start",
            "message": {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": self._input_estimate, "output_tokens": 0},
            },
        }

    def _end(self, events: list[dict[str, Any]]) -> None:
        self._close_all(events)
        self._ended = True
        has_tool_calls = any(b.kind == "tool_use" for b in self._blocks)
        stop_reason, stop_sequence = stop_reason_for(
            self._finish_reason, has_tool_calls=has_tool_calls, stop_sequence=self._stop_sequence
        )
        usage = dict(self._usage)
        usage.setdefault("output_tokens", math.ceil(self._output_chars / 4))
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": usage,
            }
        )
        events.append({"type": "message_stop"})
