"""Simulated time: callbacks run in time order, ties in the order they were scheduled."""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["Loop"]


class Loop:
    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, when: float, callback: Callable[[], None]) -> None:
        """Run `callback` at `when` (now, if that has passed)."""
        self._seq += 1
        heapq.heappush(self._queue, (max(when, self.now), self._seq, callback))

    def run(self) -> None:
        while self._queue:
            self.now, _, callback = heapq.heappop(self._queue)
            callback()
