"""Server-sent events (``text/event-stream``): an incremental decoder and an encoder.

`SSEDecoder` implements the WHATWG HTML "interpreting an event stream" algorithm for
bytes that arrive in arbitrary pieces: an event may be split across any number of reads,
including in the middle of a UTF-8 sequence, of a line, or between the ``\\r`` and ``\\n`` of
a ``\\r\\n``. Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; one leading U+FEFF (BOM) is ignored;
``:`` lines are comments (OpenRouter's ``: OPENROUTER PROCESSING``, ``: keep-alive``); a field
with no colon has an empty value; one space after the colon is removed; ``data`` lines are
joined with ``\\n``; an event whose data buffer is empty is not dispatched; ``id`` persists
across events (as ``lastEventId`` does) unless it contains NUL; ``retry`` takes ASCII digits
only. The event type ``""`` (the spec's default, ``message``) is reported as ``None``, and
so is an empty last event id.

The work is done per line with ``str`` methods (``replace``, ``split``, ``partition``), never
per byte, because this runs on every streamed chunk.

End of stream: the spec discards an event that was not closed by a blank line. `flush`
returns it instead and sets `SSEDecoder.truncated`, so the caller decides (an OpenAI stream
whose last ``data: [DONE]`` lacks its blank line is complete for our purposes; a half JSON
chunk is not).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["EventTooLarge", "SSEDecoder", "ServerSentEvent", "encode_sse"]

_RETRY_DIGITS = 12
"""A longer ``retry`` (over 31 years in milliseconds) is ignored: ``int()`` of a 5,000-digit
value raises (Python's integer-string limit), and no reconnection waits that long."""


class EventTooLarge(ValueError):
    """One event (or one unterminated line) grew past the decoder's ``max_event_size``."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``event`` is None for the default type; ``id`` is the last event id."""

    event: str | None
    data: str
    id: str | None = None


class SSEDecoder:
    """Feed bytes as they arrive with `feed`; call `flush` once at end of stream."""

    def __init__(self, max_event_size: int | None = None) -> None:
        """`max_event_size`: the most characters one event may hold, each ``data`` line
        counting its characters and its line end (None: no limit). A peer that streams one
        endless event, or endless empty ``data:`` lines, would otherwise grow this buffer
        without bound."""
        self._max = max_event_size
        self._data_chars = 0  # characters of the current event's data lines
        self._pending_chars = 0  # characters of the unterminated line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # pieces of the current, unterminated line
        self._skip_lf = False  # the text so far ended in \r: a leading \n is its other half
        self._at_start = True  # the BOM check is still to do
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""
        self.retry: int | None = None
        """The last valid ``retry`` field, in milliseconds."""
        self.truncated = False
        """Set by `flush` when the stream ended inside an event or a line."""

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode one network read; return the events it completed (often none)."""
        return self._feed_text(self._decoder.decode(data))

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: complete what is pending and reset the decoder for reuse."""
        self.truncated = False
        events = self._feed_text(self._decoder.decode(b"", final=True))
        if self._pending:
            line = "".join(self._pending)
            self._pending.clear()
            self._pending_chars = 0
            self.truncated = True
            self._line(line, events)
        if self._data:
            self.truncated = True
            self._dispatch(events)
        self._event = ""
        self._skip_lf = False
        self._at_start = True
        self._decoder.reset()
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:
                self._pending.append(text)
                self._pending_chars += len(text)
                self._check()
            return []
        if self._pending:
            self._pending.append(text)
            text = "".join(self._pending)
            self._pending.clear()
            self._pending_chars = 0
        lines = text.split("\n")
        rest = lines.pop()
        events: list[ServerSentEvent] = []
        for line in lines:
            self._line(line, events)
        if rest:
            self._pending.append(rest)
            self._pending_chars = len(rest)
            self._check()
        return events

    def _check(self) -> None:
        if self._max is not None and self._data_chars + self._pending_chars > self._max:
            raise EventTooLarge(f"an event is larger than {self._max} characters")

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            # + 1: the line end it becomes when the lines are joined; without it a run of empty
            # ``data:`` lines counted nothing and grew the event (and this list) without bound
            self._data_chars += len(value) + 1
            self._check()
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif (
            name == "retry" and value.isascii() and value.isdigit() and len(value) <= _RETRY_DIGITS
        ):
            self.retry = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            events.append(ServerSentEvent(self._event or None, data, self._last_id or None))
            self._data = []
        self._event = ""
        self._data_chars = 0


def encode_sse(data: str, event: str | None = None) -> bytes:
    """One event in wire form: ``event:`` (when given), one ``data:`` line per line, a blank line.

    ``data`` may hold any line endings; each becomes its own ``data:`` line, so the decoder
    gives back ``data`` with ``\\n`` line ends.
    """
    parts: list[str] = []
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError("an SSE event name cannot contain a line break")
        parts.append(f"event: {event}\n")
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    for line in data.split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode()
