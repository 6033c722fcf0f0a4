"""Anthropic stream events <-> a whole Anthropic Messages response.

`anthropic_events_to_response` assembles what a stream said (for the cache and ``--json``);
`response_to_anthropic_events` replays a stored response as a stream (cache hits). The two
are inverse: ``anthropic_events_to_response(response_to_anthropic_events(r)) == r``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ccrelay_translate._common import compact_json, parse_tool_arguments
from ccrelay_translate.errors import MalformedReply, clipped

# Blocks whose input streams as input_json_delta.
_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
_HANDLED = frozenset(
    {
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }
)


def anthropic_events_to_response(
    events: Iterable[dict[str, Any]], *, backend: str = "upstream"
) -> dict[str, Any]:
    """The Messages response the events describe, as the Anthropic SDK would accumulate it.

    Tool input is parsed from the joined ``partial_json`` with `parse_tool_arguments`. ``ping``
    and unknown event types are skipped (Anthropic may add some); an ``error`` event, an event
    before ``message_start`` or a delta for an unknown block raises `MalformedReply`. A stream
    without ``message_stop`` still gives what was received.
    """
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    json_parts: dict[int, list[str]] = {}
    for event in events:
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "message_start":
            message = copy.deepcopy(event.get("message"))
            if not isinstance(message, dict):
                raise MalformedReply(backend, "message_start carries no message")
            message["content"] = []
            continue
        if kind == "error":
            error = event.get("error")
            detail = error.get("message") if isinstance(error, dict) else error
            raise MalformedReply(backend, f"the stream carried an error: {clipped(detail)}")
        if kind is None:
            raise MalformedReply(backend, "a stream event without a type")
        if kind not in _HANDLED:
            continue  # ping, and event types Anthropic may add
        if message is None:
            raise MalformedReply(backend, f"{kind} before message_start")
        if kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                message.update(copy.deepcopy(delta))
            usage = event.get("usage")
            if isinstance(usage, dict):
                merged = message.setdefault("usage", {})
                merged.update({k: copy.deepcopy(v) for k, v in usage.items() if v is not None})
            continue
        if kind == "message_stop":
            continue
        index = event.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise MalformedReply(backend, f"{kind} without an integer index")
        if kind == "content_block_start":
            block = copy.deepcopy(event.get("content_block"))
            if not isinstance(block, dict):
                raise MalformedReply(backend, f"content_block_start {index} carries no block")
            blocks[index] = block
            continue
        block = blocks.get(index)
        if block is None:
            raise MalformedReply(backend, f"{kind} for block {index}, which was never started")
        if kind == "content_block_delta":
            _apply_delta(block, event.get("delta"), json_parts.setdefault(index, []))
    if message is None:
        raise MalformedReply(backend, "the stream has no message_start")
    for index, parts in json_parts.items():
        if parts and blocks[index].get("type") in _INPUT_BLOCKS:
            blocks[index]["input"] = parse_tool_arguments("".join(parts))
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def _apply_delta(block: dict[str, Any], delta: object, json_parts: list[str]) -> None:
    if not isinstance(delta, dict):
        return
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        json_parts.append(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature", "")
    elif kind == "citations_delta":
        block.setdefault("citations", [])
        if block["citations"] is None:
            block["citations"] = []
        block["citations"].append(copy.deepcopy(delta.get("citation")))


def response_to_anthropic_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored Messages response as the events Anthropic would have streamed for it.

    Each block is sent whole: a text block as one ``text_delta``, tool input as one
    ``input_json_delta`` of compact JSON, thinking as one ``thinking_delta`` and one
    ``signature_delta``; other blocks (redacted thinking, server tool results) in their
    ``content_block_start``. ``message_start`` carries the input-side usage and
    ``output_tokens: 0``; ``message_delta`` carries the stop reason and the whole usage.
    """
    message = {k: copy.deepcopy(v) for k, v in response.items() if k != "content"}
    message.update(content=[], stop_reason=None, stop_sequence=None)
    given_usage = response.get("usage")
    usage = given_usage if isinstance(given_usage, dict) else {}
    message["usage"] = {**copy.deepcopy(usage), "output_tokens": 0}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index, block in enumerate(response.get("content") or []):
        start, deltas = _replay_block(block)
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events.extend(
            {"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas
        )
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": response.get("stop_reason"),
                "stop_sequence": response.get("stop_sequence"),
            },
            "usage": copy.deepcopy(usage),
        }
    )
    events.append({"type": "message_stop"})
    return events


def _replay_block(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = block.get("type")
    start = copy.deepcopy(block)
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        start["text"] = ""
        if block.get("text"):
            deltas.append({"type": "text_delta", "text": block["text"]})
    elif kind in _INPUT_BLOCKS:
        start["input"] = {}
        deltas.append(
            {"type": "input_json_delta", "partial_json": compact_json(block.get("input", {}))}
        )
    elif kind == "thinking":
        start["thinking"] = ""
        if "signature" in start:
            start["signature"] = ""
        if block.get("thinking"):
            deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    return start, deltas
