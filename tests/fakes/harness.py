"""What every fake shares: how it is served on 127.0.0.1, what it records, what a test scripts.

- `LoopbackServer`: one aiohttp application served by aiohttp's own test server
  (``aiohttp.test_utils.TestServer``) on 127.0.0.1 and a free port (or a given one). ``await
  start()`` / ``await close()`` (or ``async with``) serve it in the test's event loop;
  ``start_in_thread()`` / ``stop_thread()`` serve it from a loop of its own in a daemon thread,
  for synchronous tests and for subprocesses that call the fake while the test blocks.
- `Recorded`: one request as the fake received it (`record` reads it off the wire).
- `Reply`: what a scripted fake answers to one request; `sse` frames Server-Sent Events.

A peer that must misbehave below HTTP (refuse connections on a port, stall a TCP handshake)
is not an aiohttp application and keeps its raw socket (tests/client/latency/helpers.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["LoopbackServer", "Recorded", "Reply", "record", "sse"]

_START_WITHIN_S = 10.0


@dataclass
class Recorded:
    """One request as received: the JSON body when it parses, else its text (None when empty)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)


async def record(request: web.Request) -> Recorded:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return Recorded(request.method, request.path, dict(request.headers), body, dict(request.query))


@dataclass
class Reply:
    """What a scripted fake does with one request."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # SSE: raw byte pieces written one by one
    chunk_delay: float = 0.0
    delay_before: float = 0.0  # stall before the headers
    stall_after_chunks: float = 0.0  # stall (holding the connection) after the last chunk
    abort: bool = False  # drop the connection without a reply (or after the chunks)
    raw: bytes | None = None  # a non-JSON body


def sse(
    payloads: list[Any], *, event_names: list[str] | None = None, done: bool = False
) -> list[bytes]:
    """Encode payloads as SSE events, one write per event."""
    out = []
    for i, payload in enumerate(payloads):
        data = payload if isinstance(payload, str) else json.dumps(payload)
        name = event_names[i] if event_names else None
        prefix = f"event: {name}\n" if name else ""
        out.append(f"{prefix}data: {data}\n\n".encode())
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


class LoopbackServer:
    """``self.app`` served on 127.0.0.1 by aiohttp's ``TestServer``; subclasses add routes to it.

    ``port`` 0 picks a free port; a fake stopped with `close` may be started again on the same
    ``port`` (a service that goes away and comes back). ``url`` is set once it listens.
    """

    def __init__(
        self,
        app: web.Application | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_max_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.app = app if app is not None else web.Application(client_max_size=client_max_size)
        self.host = host
        self.port = port
        self.url = ""
        self._server: TestServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> Self:
        """Listen, in the running event loop."""
        server = TestServer(self.app, host=self.host, port=self.port or None)
        # no access log; stop in-flight handlers within half a second on close
        await server.start_server(access_log=None, shutdown_timeout=0.5)
        self._server = server
        self.port = int(server.port or 0)
        self.url = f"http://{self.host}:{self.port}"
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def start_in_thread(self) -> Self:
        """Listen from an event loop of its own in a daemon thread (for synchronous callers)."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=_START_WITHIN_S)
        return self

    def stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout=_START_WITHIN_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_START_WITHIN_S)
        loop.close()
        self._loop = self._thread = None
