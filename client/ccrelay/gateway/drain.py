"""A graceful stop: refuse new requests, let in-flight ones finish, then end what is left.

On SIGTERM/SIGINT the gateway stops listening and answers any request that still arrives (on a
kept-alive connection) with ``529 overloaded_error``. Requests in flight get ``drain_s`` to
finish. Past it, each is cancelled with `DRAIN_REASON`: a stream then ends with an SSE
``error`` event (never a silent cut), a non-streamed request is answered ``529`` with
``x-should-retry: true`` (a restarted gateway can serve it), and the process exits promptly.
"""

from __future__ import annotations

import asyncio

__all__ = ["DRAIN_REASON", "Drain"]

DRAIN_REASON = "ccrelay gateway shutting down"
_CUT_GRACE_S = 2.0  # for the cancelled requests to write their error and go


class Drain:
    """The gateway's in-flight requests, and how far a stop has got."""

    def __init__(self) -> None:
        self.stopping = False
        """No new request is served."""
        self.cutting = False
        """The drain time is over: what is still in flight is being ended."""
        self._active: set[asyncio.Task[object]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def enter(self) -> asyncio.Task[object] | None:
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        if task is not None:
            self._active.discard(task)

    def cut_by(self, exc: asyncio.CancelledError) -> bool:
        """Whether this cancellation is the drain ending a request (not the caller leaving)."""
        return self.cutting and DRAIN_REASON in exc.args

    async def run(self, drain_s: float) -> int:
        """Stop serving; wait up to `drain_s` for the requests in flight; end the rest.

        Returns how many requests had to be ended.
        """
        self.stopping = True
        if self._active:
            await asyncio.wait(set(self._active), timeout=drain_s)
        left = set(self._active)
        if not left:
            return 0
        self.cutting = True
        for task in left:
            task.cancel(DRAIN_REASON)
        await asyncio.wait(left, timeout=_CUT_GRACE_S)
        return len(left)
