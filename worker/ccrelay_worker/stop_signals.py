"""SIGTERM and SIGINT over the worker's whole life, with one owner and one exit code.

RunPod stops a worker with SIGTERM, then SIGKILL after a grace period; docker and Kubernetes do
the same. Whatever phase the worker is in, a stop signal must run the code that gives back
what the worker holds: the pull lease on the shared volume, the in-flight HTTP requests, the
``ollama serve`` child. So the handler installed here stays installed from the start of
``main`` to its end (aiohttp's ``run_app`` would restore the default handler when it returns,
and a second signal would then kill the worker and orphan Ollama), and what it does depends on
who is listening:

* an asyncio phase (the boot, the HTTP server) registers a callback with :meth:`listen`; the
  signal is handed to its loop, which cancels the boot (the lease is released by its
  ``async with``) or drains the server; a second signal cuts the drain short;
* the serverless loop (the runpod SDK's, which we do not own) registers an ``immediate``
  action: stop the engine and leave (no lease is held while serving);
* otherwise the signal raises :class:`StopRequested`, which unwinds through every ``finally``.

Every way out by signal n exits 128 + n (143 for SIGTERM), in both modes: the container
convention, and what RunPod's logs and ``docker ps`` show for a stopped worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopRequested", "StopSignals"]

log = logging.getLogger("ccrelay.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
OnSignal = Callable[[int, bool], None]  # (signal number, is it the first one)


class StopRequested(BaseException):
    """A stop signal arrived while no loop listened; unwinds like KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class StopSignals:
    """The process's SIGTERM / SIGINT handler and the first signal it received."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._listener: tuple[asyncio.AbstractEventLoop, OnSignal] | None = None
        self.immediate: OnSignal | None = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (an embedding test): leave signals alone
                break

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def listen(self, loop: asyncio.AbstractEventLoop, on_signal: OnSignal) -> Iterator[None]:
        """Hand signals to ``on_signal`` in ``loop`` while the block runs (one arrived: now)."""
        self._listener = (loop, on_signal)
        try:
            if self.signum is not None:
                loop.call_soon(on_signal, self.signum, True)
            yield
        finally:
            self._listener = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signum is None
        name = signal.Signals(signum).name
        if first:
            self.signum = signum
            log.warning("received %s; stopping", name)
        else:
            log.warning("received %s again while stopping; hurrying", name)
        listener = self._listener
        if listener is not None:
            loop, on_signal = listener
            loop.call_soon_threadsafe(on_signal, signum, first)
            return
        if self.immediate is not None:
            self.immediate(signum, first)
            return
        if first:
            raise StopRequested(signum)
