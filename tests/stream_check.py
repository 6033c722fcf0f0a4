"""A strict reader of Anthropic stream events, for every test that makes or relays a stream.

`check_stream` holds a list of event dicts to what Anthropic's streaming protocol promises
(https://platform.claude.com/docs/en/build-with-claude/streaming, "Event types": one
``message_start``, then each content block as start, deltas, stop, one after another with
indexes counting up from 0, then ``message_delta`` and ``message_stop``, ``ping`` anywhere in
between), and feeds them to the official ``anthropic`` SDK's own accumulator
(``anthropic.lib.streaming._messages.accumulate_event``, what ``MessageStream`` runs), so a
stream passes only if Claude Code's SDK would read it. It returns the accumulated message,
validated as the SDK's ``Message``.
"""

from __future__ import annotations

from typing import Any

import orjson
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

__all__ = ["check_stream"]

_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)

# The delta types each block type may receive.
_DELTAS = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "mcp_tool_use": {"input_json_delta"},
}


def check_stream(events: list[dict[str, Any]]) -> Message:
    """Assert `events` form one valid Anthropic stream; return the SDK's accumulated message."""
    assert events, "an empty stream"
    assert events[0].get("type") == "message_start", "the first event must be message_start"
    assert events[-1] == {"type": "message_stop"}, "the last event must be message_stop"
    _check_order(events)
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        if event["type"] == "ping":
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return Message.model_validate(snapshot.to_dict())


def _check_order(events: list[dict[str, Any]]) -> None:
    open_block: dict[str, Any] | None = None
    open_index = -1
    next_index = 0
    json_parts: dict[int, list[str]] = {}
    seen_delta = False
    for position, event in enumerate(events):
        where = f"event {position} ({event.get('type')})"
        kind = event.get("type")
        if kind == "ping":  # keep-alive, outside the SDK's event union
            assert position > 0, f"{where}: before message_start"
            continue
        _EVENT.validate_python(event)
        orjson.dumps(event)  # what the gateway writes: plain JSON, 64-bit ints, < 255 levels
        if position > 0:
            assert kind != "message_start", f"{where}: a second message_start"
        if kind == "content_block_start":
            assert not seen_delta, f"{where}: a block after message_delta"
            assert open_block is None, f"{where}: block {open_index} is still open"
            assert event["index"] == next_index, f"{where}: expected index {next_index}"
            open_block, open_index = event["content_block"], event["index"]
            next_index += 1
            if open_block["type"] in ("tool_use", "server_tool_use", "mcp_tool_use"):
                json_parts[open_index] = []
        elif kind == "content_block_delta":
            assert open_block is not None, f"{where}: no block is open"
            assert event["index"] == open_index, f"{where}: block {open_index} is the open one"
            delta_type = event["delta"]["type"]
            allowed = _DELTAS.get(open_block["type"], set())
            assert delta_type in allowed, f"{where}: {delta_type} in a {open_block['type']} block"
            if delta_type == "input_json_delta":
                json_parts[open_index].append(event["delta"]["partial_json"])
        elif kind == "content_block_stop":
            assert open_block is not None, f"{where}: no block is open"
            assert event["index"] == open_index, f"{where}: block {open_index} is the open one"
            _check_tool_input(open_index, json_parts.get(open_index))
            open_block = None
        elif kind == "message_delta":
            assert open_block is None, f"{where}: block {open_index} is still open"
            assert not seen_delta, f"{where}: a second message_delta"
            seen_delta = True
        elif kind == "message_stop":
            assert seen_delta, f"{where}: message_stop without message_delta"
            assert position == len(events) - 1, f"{where}: events after message_stop"


def _check_tool_input(index: int, parts: list[str] | None) -> None:
    """A tool block's partial_json, joined, must be a JSON object; or nothing at all (no delta,
    or Anthropic's own ``""`` for a tool without input): the input stays the start's ``{}``."""
    joined = "".join(parts or ())
    if not joined:
        return
    try:
        value = orjson.loads(joined)
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"block {index}: its input_json_delta pieces are not JSON") from exc
    assert isinstance(value, dict), f"block {index}: its input is not a JSON object"
