"""Abusive peers for the inbound-limit tests of both faces (issue 25): raw sockets on 127.0.0.1
that stall, trickle or never finish, the way the fuzzing run held the faces open.

A peer speaks raw HTTP/1.1 bytes (no client library would send a half header block), and
`closed` waits, with a bound, for the face to close it: what the tests assert is that the face
closes the peer and keeps answering everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

PARTIAL_HEADERS = (
    b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
)
"""A request's first lines without the blank line that ends its headers."""


@dataclass
class Peer:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> bool:
        """Write `data`; False once the face has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def closed(self, within: float) -> bytes:
        """Everything the face sent before it closed the connection (raises after `within`)."""
        chunks = []
        async with asyncio.timeout(within):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except (ConnectionError, OSError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.transport.abort()
        self.writer.close()


class Peers:
    """Every connection a test opens to one face, closed when the test leaves `peers`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened: list[Peer] = []

    async def connect(self) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        peer = Peer(reader, writer)
        self.opened.append(peer)
        return peer

    async def stalled(self, count: int, *, batch: int = 100) -> list[Peer]:
        """`count` connections, every other one with a partial header block, none finished.

        In batches, so the listen backlog (128) never overflows: a dropped SYN is retried only
        a second later, which would measure the kernel, not the face.
        """
        stalled: list[Peer] = []
        for start in range(0, count, batch):
            size = min(batch, count - start)
            opened = await asyncio.gather(*(self.connect() for _ in range(size)))
            for i, peer in enumerate(opened):
                if (start + i) % 2 == 0:
                    await peer.send(PARTIAL_HEADERS)
            stalled.extend(opened)
        return stalled

    def close_all(self) -> None:
        for peer in self.opened:
            peer.close()
        self.opened.clear()


@contextlib.asynccontextmanager
async def peers(port: int) -> AsyncIterator[Peers]:
    opened = Peers(port)
    try:
        yield opened
    finally:
        opened.close_all()


async def trickle(peer: Peer, data: bytes, every: float) -> int:
    """Send `data` one byte at a time, `every` seconds apart, until the face closes the
    connection; returns how many bytes went out."""
    for sent, byte in enumerate(data):
        if not await peer.send(bytes([byte])):
            return sent
        await asyncio.sleep(every)
    return len(data)


async def endless_chunks(peer: Peer, every: float) -> None:
    """A chunked body that never ends: one small chunk every `every` seconds, never the last."""
    while True:
        if not await peer.send(b"1\r\nx\r\n"):
            return
        await asyncio.sleep(every)


def chunked_request(path: str, headers: dict[str, str]) -> bytes:
    """A POST's complete header block announcing a chunked body."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextlib.contextmanager
def open_files(needed: int) -> Iterator[None]:
    """Let this test process hold `needed` files: its soft limit raised (up to the hard limit)
    for the test, and restored after. Skips when even the hard limit is too low."""
    import pytest

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file hard limit ({hard}) is below the {needed} this test holds")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
