"""Make sure the model is on the volume: look first, pull once under the lock, report progress.

A restart never downloads again: /api/tags (then /api/show) is asked BEFORE any pull. When
several workers start from an empty volume, one pulls and the others wait on the lock, then find
the model there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccrelay_worker.errors import ModelPullError
from ccrelay_worker.ollama_api import OllamaClient
from ccrelay_worker.pull_lock import PullLock

__all__ = ["EnsureResult", "PullProgress", "ensure_model"]

log = logging.getLogger("ccrelay.worker.model")


@dataclass(frozen=True)
class EnsureResult:
    model: str
    pulled: bool
    waited_for_lock: bool = False


async def ensure_model(
    client: OllamaClient,
    model: str,
    lock: PullLock,
    *,
    progress_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> EnsureResult:
    """Return once Ollama has ``model``; pull it (under ``lock``) only if it is missing."""
    if await client.has_model(model):
        log.info("model %s is already in %s; nothing to pull", model, lock.directory)
        return EnsureResult(model, pulled=False)

    async with lock:
        if await client.has_model(model):
            log.info(
                "model %s appeared in %s while waiting for the lock; nothing to pull",
                model,
                lock.directory,
            )
            return EnsureResult(model, pulled=False, waited_for_lock=lock.waited)
        log.info(
            "model %s is not in %s; pulling it (once, for every worker)", model, lock.directory
        )
        progress = PullProgress(model, interval=progress_interval, clock=clock)
        async for event in client.pull(model):
            progress.update(event)
        progress.finish()

    if not await client.has_model(model):
        raise ModelPullError(
            model, "Ollama reported success but does not list the model afterwards"
        )
    return EnsureResult(model, pulled=True, waited_for_lock=lock.waited)


class PullProgress:
    """Folds /api/pull lines into overall progress and logs it at most every ``interval`` s.

    Each layer (``digest``) reports its own ``total`` and ``completed`` bytes; the overall figure
    is the sum over layers seen so far. Speed is measured between two log lines; ETA follows.
    Status changes that are not byte progress ("verifying sha256 digest", "writing manifest",
    "success") are always logged.
    """

    def __init__(
        self,
        model: str,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.model = model
        self.interval = interval
        self._clock = clock
        self._log = logger
        self._layers: dict[str, tuple[int, int]] = {}
        self._last_status: str | None = None
        self._last_time: float | None = None
        self._last_bytes = 0
        self.lines: list[str] = []

    @property
    def total(self) -> int:
        return sum(total for total, _ in self._layers.values())

    @property
    def completed(self) -> int:
        return sum(done for _, done in self._layers.values())

    def update(self, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        digest = event.get("digest")
        total = event.get("total")
        if isinstance(digest, str) and isinstance(total, int) and total > 0:
            done = event.get("completed")
            self._layers[digest] = (total, min(int(done) if isinstance(done, int) else 0, total))
            self._maybe_log_bytes()
            return
        if digest:
            return  # a layer announced before its size is known
        if status and status != self._last_status:
            self._emit(f"pulling {self.model}: {status}")
        self._last_status = status or self._last_status

    def finish(self) -> None:
        if self._layers:
            self._emit(f"pulled {self.model}: {_size(self.completed)} on the volume")

    def _maybe_log_bytes(self) -> None:
        now = self._clock()
        if self._last_time is None:
            self._last_time, self._last_bytes = now, self.completed
            self._emit(self._describe(rate=None))
            return
        elapsed = now - self._last_time
        if elapsed < self.interval:
            return
        done = self.completed
        rate = (done - self._last_bytes) / elapsed if elapsed > 0 else None
        self._last_time, self._last_bytes = now, done
        self._emit(self._describe(rate))

    def _describe(self, rate: float | None) -> str:
        total, done = self.total, self.completed
        percent = 100.0 * done / total if total else 0.0
        text = f"pulling {self.model}: {percent:.1f}% ({_size(done)} of {_size(total)})"
        if rate is not None and rate > 0:
            eta = (total - done) / rate
            text += f" at {rate / 1e6:.1f} MB/s, ETA {_duration(eta)}"
        return text

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self._log.info("%s", line)


def _size(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.2f} GB"
    return f"{count / 1e6:.1f} MB"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
