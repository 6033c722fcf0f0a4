"""The one log line every request (every RunPod job) writes on the ``ccrelay.handler`` logger."""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

__all__ = ["RequestLog"]

logger = logging.getLogger("ccrelay.handler")


class RequestLog:
    """Context manager: collects a request's cache facts and writes its single line on exit.

    ``chat cache=hit key=0123456789ab ms=0.41 stream=false coalesced=false outcome=ok id=...``
    """

    __slots__ = ("cache", "coalesced", "key", "kind", "label", "outcome", "started", "stream")

    def __init__(self, kind: str, *, stream: bool, label: str | None) -> None:
        self.kind = kind
        self.stream = stream
        self.label = label
        self.cache = "bypass"
        self.key = "-"
        self.coalesced = False
        self.outcome = "ok"
        self.started = time.perf_counter()

    def __enter__(self) -> RequestLog:
        self.started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.failed(exc_type)
        self.emit()

    def failed(self, exc_type: type[BaseException]) -> None:
        if issubclass(exc_type, asyncio.CancelledError):
            self.outcome = "cancelled"
        elif issubclass(exc_type, GeneratorExit):
            self.outcome = "closed"
        else:
            self.outcome = exc_type.__name__

    def emit(self) -> None:
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        logger.info(
            "%s cache=%s key=%s ms=%.2f stream=%s coalesced=%s outcome=%s%s",
            self.kind,
            self.cache,
            self.key,
            elapsed_ms,
            "true" if self.stream else "false",
            "true" if self.coalesced else "false",
            self.outcome,
            f" id={self.label}" if self.label else "",
        )
