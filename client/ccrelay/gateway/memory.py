"""Giving memory back after a burst: ``malloc_trim`` once the gateway falls idle.

A burst of concurrent 50 KB Claude Code requests decodes each into a few hundred KB of Python
objects; once they are freed, glibc keeps the pages (the high-water mark stays resident, about
20 MB after 64 at once). `IdleTrim` asks glibc to return them (``malloc_trim(0)``, in a worker
thread) when no request has been in flight for `idle_s`, at most once every `every_s`. Not on
glibc (macOS, musl): nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

__all__ = ["IdleTrim"]

log = logging.getLogger("ccrelay.gateway")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class IdleTrim:
    def __init__(
        self,
        in_flight: Callable[[], int],
        *,
        idle_s: float = 0.5,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._in_flight = in_flight
        self._idle_s = idle_s
        self._every_s = every_s
        self._clock = clock
        self._trim = _malloc_trim()
        self._last = clock()
        self._pending: asyncio.TimerHandle | None = None
        self.trims = 0

    def request_done(self) -> None:
        """Called as each request leaves: when none is left, look again in `idle_s`."""
        if self._trim is None or self._pending is not None or self._in_flight():
            return
        if self._clock() - self._last < self._every_s:
            return
        loop = asyncio.get_running_loop()
        self._pending = loop.call_later(self._idle_s, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = None
        if self._in_flight() or self._trim is None:
            return
        self._last = self._clock()
        self.trims += 1
        loop.run_in_executor(None, self._trim, 0)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
