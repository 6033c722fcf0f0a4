"""Giving memory back after a burst: ``malloc_trim`` once the gateway falls idle.

A burst of concurrent 50 KB Claude Code requests decodes each into a few hundred KB of Python
objects; once they are freed, glibc keeps the pages (the high-water mark stays resident, about
20 MB after 64 at once). `IdleTrim` asks glibc to return them (``malloc_trim(0)``, in a worker
thread) when no request has been in flight for `idle_s`, at most once every `every_s` (a burst
that ends sooner after a trim is trimmed when the period is over). Not on
glibc (macOS, musl): nothing is done. ``ctypes`` is loaded at the first idle moment, not at
start (it was 4 ms of every gateway's start-up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

__all__ = ["IdleTrim"]

log = logging.getLogger("ccrelay.gateway")


def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

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
        self._trim: Callable[[int], int] | None = None
        self._looked_up = False  # for glibc's malloc_trim, at the first idle moment
        self._last = self._done = clock()
        self._pending: asyncio.TimerHandle | None = None
        self.trims = 0

    def request_done(self) -> None:
        """Called as each request leaves: once none has been in flight for `idle_s`, and
        `every_s` has passed since the last trim, memory goes back."""
        self._done = self._clock()
        if self._pending is not None or self._in_flight():
            return
        if self._looked_up and self._trim is None:
            return
        self._arm()

    def _arm(self) -> None:
        # Within `every_s` of the last trim: once that period is over, not never (a burst
        # that ended just after a trim would otherwise keep its high-water mark).
        due = max(self._done + self._idle_s, self._last + self._every_s)
        self._pending = asyncio.get_running_loop().call_later(
            max(0.0, due - self._clock()), self._check
        )

    def _check(self) -> None:
        self._pending = None
        if not self._looked_up:
            self._trim, self._looked_up = _malloc_trim(), True
        if self._trim is None or self._in_flight():
            return  # the request in flight arms it again as it leaves
        if self._clock() - self._done < self._idle_s:
            self._arm()  # one came and went meanwhile: idle from then on
            return
        self._last = self._clock()
        self.trims += 1
        asyncio.get_running_loop().run_in_executor(None, self._trim, 0)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
