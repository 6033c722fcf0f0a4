"""HTTP mode's ports while the worker boots: bound at once, answering "starting" until ready.

RunPod's load balancer polls ``/ping`` on ``PORT_HEALTH`` and counts a worker as initializing
on 204, healthy on 200, and anything else (a refused connection included) as unhealthy, out of
the pool (runpod/docs serverless/load-balancing/overview.mdx). The boot can take minutes (the
engine starts, the model loads, a first pull), so the ports are bound before it: `Listeners`
binds them, `StartingFace` answers on duplicates of the same sockets (``/ping``: 204, any other
path: 503 with ``Retry-After``) from a thread of its own, and once the boot is done the real
server takes the original sockets over. Connections that arrive in between wait in the
kernel's backlog: none is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["Listeners", "StartingFace"]

logger = logging.getLogger("ccrelay.worker.http")

_HEADER_LIMIT = 16 * 1024
_HEADER_TIMEOUT_S = 10.0
_STARTING = json.dumps(
    {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "the worker is starting (its engine and model are loading); retry shortly",
        },
    }
).encode()


@dataclass
class Listeners:
    """The bound, listening sockets of HTTP mode: the service port, and the health port when it
    is another one."""

    service: socket.socket
    health: socket.socket | None = None
    sockets: list[socket.socket] = field(default_factory=list)

    @classmethod
    def bind(cls, host: str, port: int, health_port: int | None = None) -> Listeners:
        """Bind now (an OSError, such as a port in use, is the caller's to report)."""
        service = _listen(host, port)
        try:
            health = _listen(host, health_port) if health_port else None
        except BaseException:
            service.close()
            raise
        return cls(service, health, [s for s in (service, health) if s is not None])

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _listen(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class StartingFace:
    """Answers on duplicates of `listeners` from a thread until `stop`."""

    def __init__(self, listeners: Listeners) -> None:
        self._listeners = listeners
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccrelay-starting", daemon=True)
        self._servers: list[asyncio.Server] = []

    def start(self) -> StartingFace:
        self._thread.start()
        self._started.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            for sock in self._listeners.sockets:
                server = self._loop.run_until_complete(
                    asyncio.start_server(self._answer, sock=sock.dup())
                )
                self._servers.append(server)
        finally:
            self._started.set()
        self._loop.run_forever()
        for server in self._servers:
            server.close()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def stop(self) -> None:
        """Stop answering; the original sockets stay open for the real server."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HEADER_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _HEADER_LIMIT:
                return
            target = head.split(b"\r\n", 1)[0].split(b" ")
            path = target[1].split(b"?", 1)[0] if len(target) > 1 else b""
            if path == b"/ping":
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            else:
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 10\r\nConnection: close\r\n"
                    + f"Content-Length: {len(_STARTING)}\r\n\r\n".encode()
                    + _STARTING
                )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
