"""ccrelay_wire.inbound: deadlines and a cap on the way in, on a real loopback server.

The face here is a tiny HTTP/1.1 responder (what each face's middleware does with the guard's
hooks, nothing more), so the guard is tested apart from aiohttp; tests/client/gateway and
tests/worker run it inside the two real faces. Also here: the SSE decoder's size limit against
an upstream that streams empty ``data:`` lines (issue 25, finding 7).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from ccrelay_wire.inbound import (
    BodyTimeout,
    BodyTooLarge,
    InboundGuard,
    InboundLimits,
    http_reply,
    raise_open_file_limit,
    read_body,
)
from ccrelay_wire.sse import EventTooLarge, SSEDecoder
from tests.fuzz.slow_peers import PARTIAL_HEADERS, Peer, Peers, peers, trickle

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TIMEOUT_REPLY = http_reply(408, "Request Timeout", b'{"error":"slow"}')
FAST = InboundLimits(header_timeout_s=0.3, idle_timeout_s=0.3, body_timeout_s=1, body_gap_s=0.3)
WITHIN = 10.0  # bound on waiting for something the guard must do long before


class TinyFace(asyncio.Protocol):
    """Answers every complete header block with 200 after `delay`, keeping the connection, and
    tells the guard where each request starts and ends, as both faces' middleware does."""

    def __init__(self, guard: InboundGuard, delay: float) -> None:
        self.guard = guard
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.guard.request_started(self)
            asyncio.get_running_loop().call_later(self.delay, self.reply)

    def reply(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(OK)
        self.guard.request_finished(self)


@asynccontextmanager
async def face(limits: InboundLimits = FAST, delay: float = 0.0) -> AsyncIterator[Face]:
    guard = InboundGuard(limits, timeout_reply=TIMEOUT_REPLY)
    server = await asyncio.get_running_loop().create_server(
        guard.wrap(lambda: TinyFace(guard, delay)), "127.0.0.1", 0
    )
    try:
        async with peers(server.sockets[0].getsockname()[1]) as opened:
            yield Face(guard, opened)
    finally:
        server.close()
        guard.close()


class Face:
    def __init__(self, guard: InboundGuard, opened: Peers) -> None:
        self.guard = guard
        self.peers = opened

    async def peer(self) -> Peer:
        return await self.peers.connect()


async def reply_to(peer: Peer, request: bytes = REQUEST) -> bytes:
    await peer.send(request)
    async with asyncio.timeout(WITHIN):
        return await peer.reader.readexactly(len(OK))


# -- the header deadline ----------------------------------------------------------------------


async def test_headers_trickled_past_their_deadline_get_a_408_and_are_closed() -> None:
    async with face() as running:
        peer = await running.peer()
        sending = asyncio.create_task(trickle(peer, PARTIAL_HEADERS, every=0.02))
        answer = await peer.closed(WITHIN)
        sent = await sending
    assert answer == TIMEOUT_REPLY
    assert 0 < sent < len(PARTIAL_HEADERS), "closed while bytes kept coming"


async def test_a_header_end_split_across_reads_ends_the_header_deadline() -> None:
    async with face(delay=FAST.header_timeout_s * 3) as running:  # a slow reply: not cut
        peer = await running.peer()
        await peer.send(REQUEST[:-2])
        await asyncio.sleep(0.05)
        assert await reply_to(peer, REQUEST[-2:]) == OK


async def test_each_request_on_a_kept_alive_connection_has_its_own_header_deadline() -> None:
    async with face() as running:
        peer = await running.peer()
        for _ in range(3):  # past the first deadline in all
            assert await reply_to(peer) == OK
            await asyncio.sleep(FAST.header_timeout_s / 2)
        await peer.send(PARTIAL_HEADERS)
        assert await peer.closed(WITHIN) == TIMEOUT_REPLY


async def test_pipelined_requests_are_each_answered() -> None:
    async with face() as running:
        peer = await running.peer()
        await peer.send(REQUEST * 3)
        async with asyncio.timeout(WITHIN):
            assert await peer.reader.readexactly(3 * len(OK)) == OK * 3


async def test_a_flood_of_header_timeouts_is_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.inbound")
    async with face() as running:
        stalled = [await running.peer() for _ in range(5)]
        for peer in stalled:
            await peer.send(PARTIAL_HEADERS)
        for peer in stalled:
            assert await peer.closed(WITHIN) == TIMEOUT_REPLY
    lines = [r.getMessage() for r in caplog.records if r.name == "ccrelay.inbound"]
    assert len(lines) == 1, lines
    assert "past the header deadline (0.3 s)" in lines[0]


# -- idle connections -------------------------------------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed_silently() -> None:
    async with face() as running:
        peer = await running.peer()
        assert running.guard.waiting == 1
        assert await peer.closed(WITHIN) == b""
        assert running.guard.waiting == 0


async def test_a_kept_alive_connection_idles_out_after_its_reply() -> None:
    async with face() as running:
        peer = await running.peer()
        assert await reply_to(peer) == OK
        assert running.guard.idle == 1
        assert running.guard.waiting == 0, "a served connection is not waiting any more"
        assert await peer.closed(WITHIN) == b""
        assert running.guard.idle == 0


# -- the cap on waiting connections -----------------------------------------------------------


async def test_over_the_cap_the_longest_waiting_connection_is_closed() -> None:
    limits = InboundLimits(header_timeout_s=60, idle_timeout_s=60, max_pending=3)
    async with face(limits) as running:
        stalled = []
        for _ in range(3):
            peer = await running.peer()
            await peer.send(PARTIAL_HEADERS)
            stalled.append(peer)
        await asyncio.sleep(0.05)
        assert running.guard.waiting == 3
        honest = await running.peer()  # the fourth: the first stalled one makes room
        assert await stalled[0].closed(WITHIN) == b""
        assert await reply_to(honest) == OK
        assert running.guard.waiting == 2, "the other two still wait"
        for peer in stalled[1:]:
            assert not peer.reader.at_eof()
            peer.close()


async def test_a_kept_alive_connection_does_not_count_against_the_cap() -> None:
    limits = InboundLimits(header_timeout_s=60, idle_timeout_s=60, max_pending=1)
    async with face(limits) as running:
        served = await running.peer()
        assert await reply_to(served) == OK
        other = await running.peer()
        assert await reply_to(other) == OK
        assert await reply_to(served) == OK, "the idle one was not evicted"
        served.close()
        other.close()


# -- the body reader --------------------------------------------------------------------------


@pytest.fixture
async def stream() -> AsyncIterator[StreamReader]:
    """aiohttp's own request body stream on a live connection, fed by the test as aiohttp's
    parser feeds it."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, protocol = await loop.connect_accepted_socket(lambda: BaseProtocol(loop), ours)
    try:
        yield StreamReader(protocol, 2**16, loop=loop)
    finally:
        transport.close()
        theirs.close()


async def test_a_body_already_here_is_read_without_waiting(stream: StreamReader) -> None:
    stream.feed_data(b'{"a":')
    stream.feed_data(b"1}")
    stream.feed_eof()
    assert await read_body(stream, max_size=100, timeout_s=1, gap_s=1) == b'{"a":1}'


async def test_a_body_arriving_in_pieces_is_read_whole(stream: StreamReader) -> None:

    async def feed() -> None:
        for piece in (b"ab", b"cd", b"ef"):
            await asyncio.sleep(0.01)
            stream.feed_data(piece)
        stream.feed_eof()

    feeding = asyncio.create_task(feed())
    assert await read_body(stream, max_size=100, timeout_s=5, gap_s=5) == b"abcdef"
    await feeding


async def test_a_body_whose_pieces_stop_fails_after_the_gap(stream: StreamReader) -> None:
    stream.feed_data(b"ab")
    with pytest.raises(BodyTimeout, match=r"stalled: nothing arrived for 0\.1 s"):
        await read_body(stream, max_size=100, timeout_s=30, gap_s=0.1)


async def test_a_body_that_never_ends_fails_at_the_total_deadline(stream: StreamReader) -> None:

    async def drip() -> None:
        while True:
            stream.feed_data(b"x")
            await asyncio.sleep(0.02)

    dripping = asyncio.create_task(drip())
    try:
        with pytest.raises(BodyTimeout, match=r"did not arrive within 0\.3 s"):
            await read_body(stream, max_size=10**6, timeout_s=0.3, gap_s=5)
    finally:
        dripping.cancel()


async def test_a_body_over_the_size_limit_is_refused(stream: StreamReader) -> None:
    stream.feed_data(b"x" * 60)
    stream.feed_data(b"x" * 60)
    with pytest.raises(BodyTooLarge, match="larger than 100 bytes") as caught:
        await read_body(stream, max_size=100, timeout_s=1, gap_s=1)
    assert caught.value.limit == 100


# -- settings and the open-file limit ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("header_timeout_s", 0), ("body_gap_s", -1), ("idle_timeout_s", float("nan"))],
)
def test_limits_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a number of seconds above 0"):
        InboundLimits(**{field: value})  # type: ignore[arg-type]


def test_max_pending_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_pending must be at least 1"):
        InboundLimits(max_pending=0)


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = min(soft, 256)
    if hard != resource.RLIM_INFINITY and hard <= lower:
        pytest.skip("the hard limit leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (lower, hard))
    try:
        before, after = raise_open_file_limit() or (0, 0)
        assert before == lower
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == after > lower
        assert raise_open_file_limit() is None, "already raised"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- the SSE decoder's event-size limit (an upstream is inbound too) --------------------------


def test_empty_data_lines_count_against_the_event_size_limit() -> None:
    """Each ``data:`` line is a line end in the event: 10,000 empty ones are 10,000 characters.
    They counted nothing, so an upstream could grow one event to hundreds of MB."""
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLarge):
        for _ in range(100):
            decoder.feed(b"data:\n" * 100)


def test_an_event_within_the_limit_still_passes_with_its_line_ends() -> None:
    decoder = SSEDecoder(max_event_size=20)
    (event,) = decoder.feed(b"data: a\ndata:\ndata: b\n\n")
    assert event.data == "a\n\nb"


def test_a_retry_too_long_to_be_a_number_is_ignored() -> None:
    decoder = SSEDecoder(max_event_size=10_000)
    decoder.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n")
    assert decoder.retry is None
    decoder.feed(b"retry: 1500\n\n")
    assert decoder.retry == 1500
