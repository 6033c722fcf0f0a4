"""Anthropic stream events in wire form: how the gateway writes them, and events passed through.

`encode_event` writes an event dict as ``event: <type>\\ndata: <json>\\n\\n``. `RawEvent` is an
event a backend received already in Anthropic's form (the ``anthropic`` pass-through): its bytes
go to the caller as they came, and its JSON is parsed only when someone asks for the dict
(`RawEvent.event`) or the backend already had to (``message_start``, ``message_delta``,
``message_stop``: the usage and completion the records need). A long answer's hundreds of
``content_block_delta`` events are never decoded and re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ccrelay_wire.sse import encode_sse

__all__ = ["RawEvent", "encode_event"]

_PREFIXES: dict[str, bytes] = {}


def _prefix(kind: str) -> bytes | None:
    prefix = _PREFIXES.get(kind)
    if prefix is None:
        if "\n" in kind or "\r" in kind:
            return None
        prefix = _PREFIXES[kind] = b"event: " + kind.encode() + b"\ndata: "
    return prefix


def encode_event(event: dict[str, Any]) -> bytes:
    """One Anthropic event in wire form. orjson output has no raw line break, so the JSON is
    one ``data:`` line and needs no splitting; the ``event:`` line is cached per type."""
    kind = event.get("type")
    prefix = _prefix(kind) if isinstance(kind, str) else None
    if prefix is None:
        return encode_sse(orjson.dumps(event).decode())
    return prefix + orjson.dumps(event) + b"\n\n"


@dataclass(slots=True)
class RawEvent:
    """An Anthropic event as received: its type, its ``data`` text, and its dict if parsed."""

    kind: str
    data: str
    payload: dict[str, Any] | None = None

    @property
    def event(self) -> dict[str, Any]:
        if self.payload is None:
            parsed = orjson.loads(self.data)
            self.payload = parsed if isinstance(parsed, dict) else {"type": self.kind}
        return self.payload

    def wire(self) -> bytes:
        prefix = _prefix(self.kind)
        if prefix is None or "\n" in self.data or "\r" in self.data:
            return encode_sse(self.data, event=self.kind if prefix is not None else None)
        return prefix + self.data.encode() + b"\n\n"
