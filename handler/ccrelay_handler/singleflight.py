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

Redis failures never fail a request: the caller gets a ``Lease`` marked ``degraded`` (serve
uncached) and in-process coalescing still works.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ccrelay_handler.cache import ResponseCache, decode_completion, encode_completion
from ccrelay_handler.errors import CacheUnavailable, HandlerError
from ccrelay_handler.store import RedisStore

__all__ = ["Hit", "Lease", "SingleFlight"]

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
class Lease:
    """This caller runs inference for ``key``; it must call ``finish`` or ``abandon`` once."""

    key: str
    token: str | None
    degraded: bool
    _flight: SingleFlight = field(repr=False)
    _future: asyncio.Future[bytes] = field(repr=False)
    _renewer: asyncio.Task[None] | None = field(default=None, repr=False)

    async def finish(self, completion: dict[str, Any], ttl_s: int | None = None) -> None:
        """Store the completion, release the lock, hand the result to in-process followers."""
        raw = encode_completion(completion)
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
        self._local: dict[str, asyncio.Future[bytes]] = {}

    async def begin(self, key: str) -> Hit | Lease:
        while True:
            waiting = self._local.get(key)
            if waiting is not None:
                try:
                    raw = await asyncio.shield(waiting)
                except _LeaderGone:
                    continue  # the leader went away without a result: lead (or follow) anew
                completion = decode_completion(raw)
                assert completion is not None  # the leader encoded it
                return Hit(completion, coalesced=True)

            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._local[key] = future
            try:
                outcome = await self._lead_or_follow(key, future)
            except BaseException as exc:
                self.settle(key, future, error=exc)
                raise
            if isinstance(outcome, Hit):
                self.settle(key, future, result=encode_completion(outcome.completion))
            return outcome

    async def _lead_or_follow(self, key: str, future: asyncio.Future[bytes]) -> Hit | Lease:
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
                    value, locked = await self.cache.peek(key)
                    if value is not None:
                        return Hit(value, coalesced=True)
                    if not locked:
                        break  # holder gone without a result: try to take the lock
        except CacheUnavailable:
            return Lease(key, None, True, self, future)

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
        if self._local.get(key) is future:
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
