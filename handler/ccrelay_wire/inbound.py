"""Deadlines on the way in, for both HTTP faces (the gateway and the worker's HTTP mode).

aiohttp sets no deadline for reading a request's headers or body, and a face checks its key
only once the headers are complete, so anyone who can reach the port can hold connections
open for free: about 1,100 that never finish their headers used up a 1,024-file limit and the
face stopped answering. Both faces therefore serve through `InboundGuard`, which bounds what a
peer can hold without ever sending a complete request:

- **headers**: from a request's first byte to the blank line that ends its headers
  (``header_timeout_s``); past it the peer gets ``timeout_reply`` (a 408) and is closed;
- **idle**: a connection with no byte of a request, new or kept alive after a reply
  (``idle_timeout_s``), is closed;
- **waiting connections**: at most ``max_pending`` connections may be new or still sending
  their headers; one more closes the one that has waited longest, so honest clients, whose
  headers come in one packet, still get in while a flood of stalled ones cycles through;
- **body**: `read_body` reads a request's body in place of ``request.read()``, within
  ``body_timeout_s`` in all and ``body_gap_s`` between two pieces.

The guard wraps any asyncio protocol factory (aiohttp's ``web.Server`` is one) and watches only
the bytes that come before the end of the headers; from there to the end of the reply a
connection costs one comparison per read. The face tells it where a reply ends
(`InboundGuard.request_finished`, from its middleware) so a kept-alive connection is idle
again, and where one starts (`InboundGuard.request_started`), which also covers a request
pipelined behind another. Deadlines are checked by one timer that sweeps three
insertion-ordered tables (a connection re-enters at the end whenever its state changes, so each
table is in deadline order and a sweep stops at its first live entry): nothing is scheduled per
request. Standard library only, like the rest of this package: nothing here imports aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "InboundGuard",
    "InboundLimits",
    "close_soon",
    "http_reply",
    "raise_open_file_limit",
    "read_body",
]

_END_OF_HEADERS = b"\r\n\r\n"
_REPORT_EVERY_S = 60.0  # one summary line at most this often, however many are closed

# A connection's state. New and kept-alive connections both wait for a request's first byte,
# but only new ones count against max_pending: a kept one has already sent a whole request.
_NEW, _KEPT, _HEADERS, _BUSY, _CLOSED = range(5)


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """How long a peer may take, and how many may wait; each default is far beyond what an
    honest client needs (docs/deploy.md, "Inbound limits", says why each is safe)."""

    header_timeout_s: float = 30.0
    body_timeout_s: float = 600.0
    body_gap_s: float = 60.0
    idle_timeout_s: float = 75.0
    max_pending: int = 256

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "body_gap_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {self.max_pending!r}")


class BodyTimeout(TimeoutError):
    """The request body did not arrive in time: the caller's fault; its connection is closed."""


class BodyTooLarge(ValueError):
    """The request body is larger than the face accepts."""

    def __init__(self, limit: int, size: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit
        self.size = size


class _Content(Protocol):
    """What `read_body` needs of a request's body stream (aiohttp's ``request.content``)."""

    def read_nowait(self, n: int = -1) -> bytes: ...
    def at_eof(self) -> bool: ...
    async def readany(self) -> bytes: ...


async def read_body(content: _Content, *, max_size: int, timeout_s: float, gap_s: float) -> bytes:
    """The whole body, read within `timeout_s` and with no pause longer than `gap_s`.

    What has already arrived is taken without waiting (and without arming a timer), so a body
    that came with its headers, the usual case, costs no more than ``request.read()``.
    Raises `BodyTimeout` or `BodyTooLarge`; the caller answers and closes the connection.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = content.read_nowait()
        if not chunk:
            if content.at_eof():
                break
            left = deadline - loop.time()
            if left <= 0:
                raise BodyTimeout(f"the request body did not arrive within {timeout_s:g} s")
            try:
                async with asyncio.timeout(min(gap_s, left)):
                    chunk = await content.readany()
            except TimeoutError:
                if gap_s < left:
                    raise BodyTimeout(
                        f"the request body stalled: nothing arrived for {gap_s:g} s"
                    ) from None
                raise BodyTimeout(
                    f"the request body did not arrive within {timeout_s:g} s"
                ) from None
            if not chunk:
                break
        size += len(chunk)
        if size > max_size:
            raise BodyTooLarge(max_size, size)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def http_reply(
    status: int, reason: str, body: bytes, content_type: str = "application/json"
) -> bytes:
    """A whole HTTP/1.1 reply that closes its connection: what the guard writes to a peer whose
    headers ran out of time (the face's own server never saw a request to answer)."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def close_soon(transport: Any) -> None:
    """Close `transport` once the reply being written now has been handed to it.

    For a body that timed out: the face answers, then the connection must not linger waiting
    for the rest of a body that is not coming (aiohttp would read it for up to 10 s more).
    """
    if transport is not None:
        asyncio.get_running_loop().call_soon(_shut, transport)


def _shut(transport: Any) -> None:
    # close() waits until the write buffer is flushed, which a peer that does not read never
    # lets happen; abort() drops it.
    if transport.is_closing():
        return
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise this process's open-file soft limit to its hard limit; (before, after), or None
    when it could not be raised (or already was). Each connection holds one file; the
    common soft limit of 1,024 is what a flood of connections used up."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft >= target:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return None
    return soft, target


class _Connection(asyncio.Protocol):
    """One accepted connection: the face's own protocol, watched until its headers are in."""

    __slots__ = ("_guard", "_inner", "state", "tail", "transport")

    def __init__(self, guard: InboundGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self.state = _NEW
        self.tail = b""  # the last bytes of an unfinished header block: its end may straddle reads
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._guard._opened(self, self._inner)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.state != _BUSY:
            self._guard._received(self, data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard._lost(self, self._inner)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class InboundGuard:
    """Watches every connection of one listening face; see the module docstring.

    ``wrap(factory)`` is what the face passes to ``loop.create_server``. `timeout_reply` is
    written (in the face's own error shape) to a peer whose headers ran past their deadline.
    """

    def __init__(
        self,
        limits: InboundLimits,
        *,
        log: logging.Logger | None = None,
        timeout_reply: bytes | None = None,
    ) -> None:
        self.limits = limits
        self._log = log or logging.getLogger("ccrelay.inbound")
        self._timeout_reply = timeout_reply
        self._new: dict[_Connection, float] = {}  # connection -> deadline, oldest first
        self._headers: dict[_Connection, float] = {}
        self._kept: dict[_Connection, float] = {}
        self._by_protocol: dict[object, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tick = min(1.0, max(0.01, min(limits.header_timeout_s, limits.idle_timeout_s) / 10))
        self._closed = {"headers": 0, "evicted": 0}
        self._reported_at: float | None = None

    # -- what the face calls ---------------------------------------------------------------

    def wrap(self, factory: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with: each connection watched by this guard."""
        return lambda: _Connection(self, factory())

    def request_started(self, protocol: object) -> None:
        """A request's handler runs (its headers are complete): no deadline of ours until it
        ends. `protocol` is the face's own (aiohttp's ``request.protocol``)."""
        conn = self._by_protocol.get(protocol)
        if conn is not None and conn.state < _BUSY:
            self._leave(conn)
            conn.state = _BUSY
            conn.tail = b""

    def request_finished(self, protocol: object) -> None:
        """A request's reply is done: a kept-alive connection is idle until its next request."""
        conn = self._by_protocol.get(protocol)
        if conn is not None and conn.state == _BUSY:
            conn.state = _KEPT
            self._enter(self._kept, conn, self.limits.idle_timeout_s)

    @property
    def waiting(self) -> int:
        """Connections that are new or still sending headers (what ``max_pending`` caps)."""
        return len(self._new) + len(self._headers)

    @property
    def idle(self) -> int:
        """Kept-alive connections waiting for their next request."""
        return len(self._kept)

    def close(self) -> None:
        """Stop the sweep (the face is shutting down; its connections are closed by it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- connection events -------------------------------------------------------------------

    def _opened(self, conn: _Connection, protocol: object) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._by_protocol[protocol] = conn
        self._enter(self._new, conn, self.limits.idle_timeout_s)
        self._admit()

    def _received(self, conn: _Connection, data: bytes) -> None:
        if conn.state != _HEADERS:  # the first byte of a request: its header deadline starts
            if conn.state == _CLOSED:
                return
            self._leave(conn)
            conn.state = _HEADERS
            conn.tail = b""
            self._enter(self._headers, conn, self.limits.header_timeout_s)
            self._admit()
        seen = conn.tail + data if conn.tail else data
        if _END_OF_HEADERS in seen:
            self._leave(conn)
            conn.state = _BUSY
            conn.tail = b""
        else:
            conn.tail = seen[-3:]

    def _lost(self, conn: _Connection, protocol: object) -> None:
        self._leave(conn)
        conn.state = _CLOSED
        self._by_protocol.pop(protocol, None)

    # -- tables, eviction and the sweep ------------------------------------------------------

    def _enter(self, table: dict[_Connection, float], conn: _Connection, timeout: float) -> None:
        assert self._loop is not None
        table[conn] = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._sweep)

    def _leave(self, conn: _Connection) -> None:
        state = conn.state
        if state == _NEW:
            self._new.pop(conn, None)
        elif state == _HEADERS:
            self._headers.pop(conn, None)
        elif state == _KEPT:
            self._kept.pop(conn, None)

    def _admit(self) -> None:
        """Over the cap: close whichever new or header-sending connection has waited longest."""
        while len(self._new) + len(self._headers) > self.limits.max_pending:
            oldest_new = _first(self._new, self.limits.idle_timeout_s)
            oldest_headers = _first(self._headers, self.limits.header_timeout_s)
            if oldest_new is None or (oldest_headers is not None and oldest_headers < oldest_new):
                victim = next(iter(self._headers))
            else:
                victim = next(iter(self._new))
            self._closed["evicted"] += 1
            self._shut(victim, reply=False)

    def _sweep(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        for table, reason in (
            (self._headers, "headers"),
            # a connection that never sent anything, or an idle kept-alive one, is ordinary
            # (a client opening one ahead of need); only a flood of them shows, as evictions
            (self._new, ""),
            (self._kept, ""),
        ):
            expired = []
            for conn, deadline in table.items():
                if deadline > now:
                    break
                expired.append(conn)
            for conn in expired:
                if reason:
                    self._closed[reason] += 1
                self._shut(conn, reply=table is self._headers)
        self._report(now)
        if self._new or self._headers or self._kept:
            self._timer = self._loop.call_later(self._tick, self._sweep)

    def _shut(self, conn: _Connection, *, reply: bool) -> None:
        self._leave(conn)
        conn.state = _CLOSED
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if reply and self._timeout_reply:
            transport.write(self._timeout_reply)
        _shut(transport)

    def _report(self, now: float) -> None:
        """One line for what was closed since the last, at most once a minute: a flood of
        stalled connections must not become a flood of log lines."""
        closed = self._closed
        if not any(closed.values()):
            return
        if self._reported_at is not None and now - self._reported_at < _REPORT_EVERY_S:
            return
        self._reported_at = now
        self._log.warning(
            "closed connections that sent no complete request in time: %d past the header "
            "deadline (%g s), %d over the %d waiting at once",
            closed["headers"],
            self.limits.header_timeout_s,
            closed["evicted"],
            self.limits.max_pending,
        )
        for key in closed:
            closed[key] = 0


def _first(table: dict[_Connection, float], timeout: float) -> float | None:
    """When the oldest entry of `table` entered it (None: empty)."""
    for deadline in table.values():
        return deadline - timeout
    return None
