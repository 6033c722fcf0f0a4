"""A streamed answer shared while it is produced: the leader's chunks, relayed to its followers.

When identical streamed requests arrive together, one (the single-flight leader) runs
inference; the others must not wait for the whole answer (Claude Code would time out on them)
but stream it along. The leader hands every engine chunk to its `ChunkRelay`:

- **in this process**: the chunk is appended to a list that local followers read (woken by a
  future replaced at each chunk), so it works with Redis down too;
- **across workers**: it is ``XADD``-ed to the Redis stream ``<key>:chunks``, batched (every
  chunk produced while one write is in flight goes in the next pipeline), so the leader never
  waits on Redis. Followers on other workers read the stream from its start. The stream
  expires after the lock's lifetime.

The relay ends with an end entry ``ok`` (the whole answer is in the cache as well; the stream
then lives ``_AFTER_END_S`` more, for followers still reading), or is *abandoned* (the leader
failed or was cancelled): the stream is deleted at once, so nothing of a failed answer stays in
Redis. A follower that hears nothing for ``wait_s``, finds the stream gone, or hears
``abandoned``, raises `FollowLost`: before its first chunk the caller can simply run the
request itself; after it, the caller's answer is cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from ccrelay_handler.errors import CacheUnavailable
from ccrelay_handler.store import RedisStore

__all__ = ["END_ABANDONED", "END_OK", "ChunkRelay", "FollowLost", "follow_stream"]

logger = logging.getLogger("ccrelay.handler")

END_OK = "ok"
END_ABANDONED = "abandoned"
_FIRST_POLL_S = 0.005
_MAX_POLL_S = 0.1
_AFTER_END_S = 30.0


class FollowLost(Exception):
    """The answer being followed stopped before its end (or went silent)."""


def stream_key(key: str) -> str:
    return f"{key}:chunks"


class ChunkRelay:
    """The leader's side: `publish` each chunk, then `end` once."""

    def __init__(self, store: RedisStore | None, key: str, ttl_s: float) -> None:
        self.chunks: list[dict[str, Any]] = []
        self.ended: str | None = None
        self._store = store
        self._stream = stream_key(key)
        self._ttl_s = ttl_s
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending: list[tuple[str, bytes]] = []
        self._flusher: asyncio.Task[None] | None = None

    def publish(self, chunk: dict[str, Any]) -> None:
        self.chunks.append(chunk)
        self._wake()
        if self._store is not None:
            self._pending.append(("c", json.dumps(chunk, separators=(",", ":")).encode()))
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush())

    async def end(self, how: str) -> None:
        """The last entry; waits (bounded by the store) until Redis has every entry."""
        if self.ended is not None:
            return
        self.ended = how
        self._wake()
        if self._store is None:
            return
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if how != END_OK:
            store, self._store = self._store, None
            self._pending.clear()
            if store is not None:
                with contextlib.suppress(CacheUnavailable):
                    await store.delete(self._stream)
            return
        self._pending.append(("e", how.encode()))
        self._ttl_s = _AFTER_END_S
        await self._flush()

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.get_running_loop().create_future()
        woken.set_result(None)

    async def _flush(self) -> None:
        while self._pending and self._store is not None:
            batch, self._pending = self._pending, []
            try:
                await self._store.append_stream(self._stream, batch, self._ttl_s)
            except CacheUnavailable:
                # followers on other workers go silent and give up; local ones are unaffected
                self._store = None
                self._pending.clear()

    async def follow(self, wait_s: float) -> AsyncGenerator[dict[str, Any], None]:
        """A local follower: every chunk from the first, as the leader publishes them."""
        index = 0
        while True:
            while index < len(self.chunks):
                yield self.chunks[index]
                index += 1
            if self.ended is not None:
                if self.ended == END_OK:
                    return
                raise FollowLost("the identical request this one joined stopped before its end")
            try:
                await asyncio.wait_for(asyncio.shield(self._changed), wait_s)
            except TimeoutError:
                raise FollowLost(f"the joined request sent nothing for {wait_s:g} s") from None


async def follow_stream(
    store: RedisStore,
    key: str,
    wait_s: float,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[dict[str, Any], None]:
    """A follower on another worker: the leader's chunks from the Redis stream, from its start."""
    name = stream_key(key)
    last = "0-0"
    deadline = clock() + wait_s
    delay = _FIRST_POLL_S
    while True:
        try:
            entries, exists = await store.read_stream(name, last)
        except CacheUnavailable:
            raise FollowLost(
                "redis became unavailable while following the joined request"
            ) from None
        if not entries and not exists:
            raise FollowLost("the identical request this one joined stopped before its end")
        if entries:
            deadline = clock() + wait_s
            delay = _FIRST_POLL_S
            for entry_id, fields in entries:
                last = entry_id
                if b"e" in fields:
                    if fields[b"e"] == END_OK.encode():
                        return
                    raise FollowLost("the identical request this one joined stopped before its end")
                yield json.loads(fields[b"c"])
            continue
        if clock() >= deadline:
            raise FollowLost(f"the joined request sent nothing for {wait_s:g} s")
        await sleep(delay)
        delay = min(delay * 2, _MAX_POLL_S)
