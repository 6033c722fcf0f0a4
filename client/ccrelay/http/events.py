"""Anthropic stream events in wire form: how the gateway writes them, and events passed through.

`encode_event` writes an event dict as ``event: <type>\\ndata: <json>\\n\\n``. `RawEvent` is an
event a backend received already in Anthropic's form (the ``anthropic`` pass-through): its bytes
go to the caller as they came, and its JSON is parsed only when someone asks for the dict
(`RawEvent.event`) or the backend already had to (``message_start``, ``message_delta``,
``message_stop``: the usage and completion the records need). A long answer's hundreds of
``content_block_delta`` events are never decoded and re-encoded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ccrelay.errors import CcrelayError, ProtocolError, UpstreamServerError
from ccrelay_wire.sse import ServerSentEvent, encode_sse

__all__ = ["RawEvent", "anthropic_events", "encode_event"]

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


_PARSED = frozenset({"message_start", "message_delta", "message_stop", "error"})
"""The events whose JSON is read as they pass: usage for the records, the end, an error."""


async def anthropic_events(
    events: AsyncIterator[ServerSentEvent],
    *,
    backend: str,
    error_of: Callable[[Any], CcrelayError],
) -> AsyncGenerator[RawEvent, None]:
    """An Anthropic event stream read as `RawEvent`s, up to and including ``message_stop``.

    Only the events in `_PARSED` are decoded; a delta's bytes go on as they came. An ``error``
    event raises ``error_of(its error object)``, and a stream that ends before
    ``message_stop`` raises `UpstreamServerError` (a truncated reply is never passed off as
    whole). Shared by every backend that receives Anthropic's own events.
    """
    async for event in events:
        if not event.data:
            continue
        kind = event.event
        if kind is not None and kind not in _PARSED:
            data = event.data
            if not (data.startswith("{") and data.endswith("}")):  # cut off, or garbage
                raise ProtocolError(backend, "sent a stream event that is not JSON")
            yield RawEvent(kind, data)
            continue
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise ProtocolError(backend, "sent a stream event that is not JSON") from None
        if not isinstance(payload, dict):
            raise ProtocolError(backend, "sent a stream event that is not a JSON object")
        if payload.get("type") == "error":
            raise error_of(payload.get("error"))
        yield RawEvent(str(payload.get("type") or kind), event.data, payload)
        if payload.get("type") == "message_stop":
            return
    raise UpstreamServerError(
        backend, "the stream ended before message_stop (truncated reply)", upstream_status=502
    )
