"""``SingleFlight``: identical requests arriving together run inference once.

``begin(key)`` answers either a ``Hit`` (the completion, from the cache or from another
caller's inference) or a ``Lease`` (this caller must run inference, then ``finish`` or
``abandon`` it).  Two layers:

* **in process**: the first caller for a key registers an ``asyncio.Future``; later callers in
  this process await it (shielded, so a cancelled follower does not cancel the leader);
* **across workers** (shared Redis): the in-process leader reads the cache, then takes the
  lock ``<key>:lock`` with ``SET NX PX lock_ttl`` and a random token.  A caller that does not
  get it polls (value, lock) with a short exponential backoff, up to ``lock_wait_s``: a value
  is a hit; a lock gone without a value (the holder failed or was cancelled) means try to take
  the lock again; the deadline means run inference itself (and store the result).  The holder
  stores the result, then deletes the lock only if it still holds its token (Lua).  While it
  holds the lease, a background task renews the lock every ``lock_ttl / 3`` (``PEXPIRE`` only
  if the lock still holds its token, Lua), so an inference longer than ``lock_ttl`` does not
  let a duplicate start a second one; renewal stops at ``finish``/``abandon``.  A holder that
  dies stops renewing, so its lock expires after ``lock_ttl``.

A *streamed* caller (``begin(key, stream=True)``) may get a third answer, ``Follow``: the
identical request is being streamed by another caller right now (in this process, or on a
worker that publishes its chunks to Redis), and this one streams the same chunks as they are
produced (`ccrelay_handler.chunk_relay`) instead of waiting for the whole answer. A streamed
lease carries a ``relay`` that its holder feeds with every chunk.

Redis failures never fail a request: the caller gets a ``Lease`` marked ``degraded`` (serve
uncached) and in-process coalescing still works.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ccrelay_handler.cache import ResponseCache, decode_completion, encode_completion
from ccrelay_handler.chunk_relay import (
    END_ABANDONED,
    END_OK,
    ChunkRelay,
    follow_stream,
    stream_key,
)
from ccrelay_handler.errors import CacheUnavailable, HandlerError
from ccrelay_handler.store import RedisStore

__all__ = ["Follow", "Hit", "Lease", "SingleFlight"]

logger = logging.getLogger("ccrelay.handler")

_FIRST_POLL_S = 0.005
_MAX_POLL_S = 0.1


class _LeaderGone(Exception):
    """The in-process leader stopped without a result (cancelled, or a non-handler error)."""


@dataclass(slots=True)
class Hit:
    """A completion this caller did not compute; ``coalesced`` if it waited on another caller."""

    completion: dict[str, Any]
    coalesced: bool = False


@dataclass(slots=True)
class Follow:
    """Another caller is streaming this very answer: `chunks` yields it as it is produced."""

    chunks: AsyncGenerator[dict[str, Any], None]
    coalesced: bool = True


@dataclass(slots=True)
class _Flight:
    """One in-process flight: its result, and (for a streamed leader) its chunks so far."""

    future: asyncio.Future[bytes]
    relay: ChunkRelay | None = None


@dataclass(slots=True)
class Lease:
    """This caller runs inference for ``key``; it must call ``finish`` or ``abandon`` once."""

    key: str
    token: str | None
    degraded: bool
    _flight: SingleFlight = field(repr=False)
    _future: asyncio.Future[bytes] = field(repr=False)
    _renewer: asyncio.Task[None] | None = field(default=None, repr=False)
    relay: ChunkRelay | None = None
    """A streamed lease's relay: feed it every chunk (`ChunkRelay.publish`)."""

    async def finish(self, completion: dict[str, Any], ttl_s: int | None = None) -> None:
        """Store the completion, release the lock, hand the result to in-process followers."""
        raw = encode_completion(completion)
        if self.relay is not None:
            await asyncio.shield(self.relay.end(END_OK))
        try:
            # Redis out: the store has warned; followers still get the result below.
            with suppress(CacheUnavailable):
                await self._flight.cache.put_raw(self.key, raw, ttl_s)
        finally:
            try:
                await asyncio.shield(self._release())
            finally:
                self._flight.settle(self.key, self._future, result=raw)

    async def abandon(self, exc: BaseException) -> None:
        """No result (error or cancellation): release the lock, wake followers, store nothing."""
        try:
            if self.relay is not None:
                await asyncio.shield(self.relay.end(END_ABANDONED))
            # shielded: a second cancel of this task must not leave the lock held until expiry
            await asyncio.shield(self._release())
        finally:
            self._flight.settle(self.key, self._future, error=exc)

    async def _release(self) -> None:
        """Stop renewing the lock (wait until the renewal task is done), then release it."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.wait([renewer])  # never raises the renewer's outcome
        await self._flight.release(self.key, self.token)


class SingleFlight:
    """Coalesces identical in-flight requests, in this process and across workers."""

    def __init__(
        self,
        cache: ResponseCache,
        store: RedisStore,
        *,
        lock_ttl_s: float,
        lock_wait_s: float,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self._store = store
        self._lock_ttl_s = lock_ttl_s
        self._lock_wait_s = lock_wait_s
        self._sleep = sleep
        self._clock = clock
        self._local: dict[str, _Flight] = {}

    async def begin(self, key: str) -> Hit | Lease:
        """For a non-streamed caller: the answer, or the lease to compute it."""
        outcome = await self._begin(key, stream=False)
        assert not isinstance(outcome, Follow)  # only streamed callers follow
        return outcome

    async def begin_stream(self, key: str) -> Hit | Lease | Follow:
        """For a streamed caller: the answer, a stream to follow, or the lease."""
        return await self._begin(key, stream=True)

    async def _begin(self, key: str, *, stream: bool) -> Hit | Lease | Follow:
        while True:
            flight = self._local.get(key)
            if flight is not None:
                if stream and flight.relay is not None:
                    return Follow(flight.relay.follow(self._lock_wait_s))
                try:
                    raw = await asyncio.shield(flight.future)
                except _LeaderGone:
                    continue  # the leader went away without a result: lead (or follow) anew
                completion = decode_completion(raw)
                assert completion is not None  # the leader encoded it
                return Hit(completion, coalesced=True)

            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            flight = self._local[key] = _Flight(future)
            try:
                outcome = await self._lead_or_follow(key, future, stream=stream)
            except BaseException as exc:
                self.settle(key, future, error=exc)
                raise
            if isinstance(outcome, Hit):
                self.settle(key, future, result=encode_completion(outcome.completion))
            elif isinstance(outcome, Follow):
                self.settle(key, future, error=_LeaderGone())  # local waiters look again
            elif stream:
                store = None if outcome.token is None else self._store
                outcome.relay = flight.relay = ChunkRelay(store, key, self._lock_ttl_s)
            return outcome

    async def _lead_or_follow(
        self, key: str, future: asyncio.Future[bytes], *, stream: bool
    ) -> Hit | Lease | Follow:
        try:
            cached = await self.cache.get(key)
        except CacheUnavailable:
            return Lease(key, None, True, self, future)
        if cached is not None:
            return Hit(cached)

        lock_key = self.cache.lock_key(key)
        deadline = self._clock() + self._lock_wait_s
        delay = _FIRST_POLL_S
        try:
            while True:
                token = secrets.token_hex(16)
                if await self._store.acquire_lock(lock_key, token, self._lock_ttl_s):
                    lease = Lease(key, token, False, self, future)
                    lease._renewer = asyncio.create_task(self._renew(key, token))
                    return lease
                while True:  # another worker holds the lock: wait for its result
                    if self._clock() >= deadline:
                        return Lease(key, None, False, self, future)
                    await self._sleep(delay)
                    delay = min(delay * 2, _MAX_POLL_S)
                    value, locked, streaming = await self._peek(key, stream)
                    if value is not None:
                        return Hit(value, coalesced=True)
                    if streaming:  # its holder streams it: follow the chunks as they come
                        chunks = follow_stream(
                            self._store,
                            key,
                            self._lock_wait_s,
                            sleep=self._sleep,
                            clock=self._clock,
                        )
                        return Follow(chunks)
                    if not locked:
                        break  # holder gone without a result: try to take the lock
        except CacheUnavailable:
            return Lease(key, None, True, self, future)

    async def _peek(self, key: str, stream: bool) -> tuple[dict[str, Any] | None, bool, bool]:
        """(stored completion, lock held, chunks being streamed) in one round trip."""
        lock_key = self.cache.lock_key(key)
        if not stream:
            value, locked = await self.cache.peek(key)
            return value, locked, False
        raw, (locked, streaming) = await self._store.peek(key, lock_key, stream_key(key))
        return (None if raw is None else decode_completion(raw)), locked, streaming

    async def _renew(self, key: str, token: str) -> None:
        """Keep our lock alive while the lease is held; cancelled by ``finish``/``abandon``.

        Never raises: with Redis out the renewal is skipped (the lock then expires after
        ``lock_ttl`` as without renewal); a lock no longer ours (expired, maybe taken by
        another worker) ends the renewal.
        """
        lock_key, short = self.cache.lock_key(key), self.cache.short(key)
        interval = self._lock_ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._store.renew_lock(lock_key, token, self._lock_ttl_s)
            except Exception as exc:  # CacheUnavailable (the store has warned), or anything
                logger.debug("lock renewal failed key=%s (%s)", short, type(exc).__name__)
                continue
            if not held:
                logger.debug("lock key=%s no longer ours; renewal stopped", short)
                return

    async def release(self, key: str, token: str | None) -> None:
        if token is None:
            return
        # Redis out: the lock expires by itself after lock_ttl.
        with suppress(CacheUnavailable):
            await self._store.release_lock(self.cache.lock_key(key), token)

    def settle(
        self,
        key: str,
        future: asyncio.Future[bytes],
        *,
        result: bytes | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Hand the outcome to in-process followers and forget the flight."""
        flight = self._local.get(key)
        if flight is not None and flight.future is future:
            del self._local[key]
        if future.done():
            return
        if error is None:
            assert result is not None
            future.set_result(result)
            return
        shared = isinstance(error, HandlerError) and not isinstance(error, CacheUnavailable)
        future.set_exception(error if shared else _LeaderGone())
        future.exception()  # mark retrieved: a flight without followers must not log it
