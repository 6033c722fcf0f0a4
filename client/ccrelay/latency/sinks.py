"""Record sinks: where each latency record goes once the recorder has built it.

``emit`` is called on the request path, so every sink makes it O(1): it enqueues, and a background
task of the sink's own does the I/O (off the event loop, in a thread). ``aclose`` drains within a
time bound. :class:`~client.latency.s3.S3Sink` lives in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from ccrelay.latency._layout import jsonl_name
from ccrelay.latency.record import LatencyRecord

__all__ = ["JsonlSink", "LogSink", "MultiSink", "RecordSink", "format_human"]

RECORD_LOGGER = "ccrelay.latency"
_log = logging.getLogger("ccrelay.telemetry")


@runtime_checkable
class RecordSink(Protocol):
    """Takes latency records.

    ``emit`` never blocks: it only enqueues (``emit_nowait`` is the same for synchronous callers
    inside the event loop). ``start`` starts background work early (``emit`` does it lazily);
    ``aclose`` drains within ``timeout`` seconds. (A parameter rather than ``asyncio.timeout``:
    cancelling a sink from outside could interrupt it between taking records and saving them.)
    """

    async def start(self) -> None: ...

    async def emit(self, record: LatencyRecord) -> None: ...

    def emit_nowait(self, record: LatencyRecord) -> None: ...

    async def aclose(self, timeout: float = 10.0) -> None: ...  # noqa: ASYNC109


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else str(round(value))


def format_human(record: LatencyRecord) -> str:
    """``backend=cerebras model=qwen-3-coder-480b outcome=ok status=200 ... cost=$0.0012``;
    a request record starts with ``request`` and says its attempts, failovers and saving."""
    if record.kind == "request":
        saved = (record.baseline_usd or 0.0) - record.cost_usd
        return (
            f"request backend={record.backend} model={record.model}"
            f" asked={_dash(record.requested_model)} outcome={record.outcome}"
            f" attempts={record.attempts} failovers={record.failovers}"
            f" backoff_ms={_ms(record.backoff_ms)} latency_ms={_ms(record.latency_ms)}"
            f" ttfb_ms={_ms(record.ttfb_ms)} cost=${record.cost_usd:.4f} saved=${saved:.4f}"
            f" request_id={record.request_id}"
        )
    return (
        f"backend={record.backend} model={record.model} outcome={record.outcome}"
        f" status={_dash(record.status)} attempt={record.attempt}"
        f" latency_ms={_ms(record.latency_ms)} ttfb_ms={_ms(record.ttfb_ms)}"
        f" tokens={record.tokens_in}/{record.tokens_out} cache={_dash(record.cache)}"
        f" cost=${record.cost_usd:.4f} request_id={record.request_id}"
    )


class LogSink:
    """One INFO line per attempt record on the ``ccrelay.latency`` logger, human or JSON."""

    def __init__(
        self,
        log_format: Literal["human", "json"] = "human",
        logger: logging.Logger | None = None,
        *,
        requests: bool = False,
    ) -> None:
        self.requests = requests
        """Log request records too (off: the access line already says what they say)."""
        self._format = log_format
        self._logger = logger if logger is not None else logging.getLogger(RECORD_LOGGER)

    async def start(self) -> None:
        return None

    async def emit(self, record: LatencyRecord) -> None:
        self.emit_nowait(record)

    def emit_nowait(self, record: LatencyRecord) -> None:
        # A request's own line is the gateway's access line (backend, route, attempts,
        # failovers, ms): a second one would double the logging cost of every request, which
        # is most of a record's cost. Request records go to the files and S3.
        if record.kind == "request" and not self.requests:
            return
        if not self._logger.isEnabledFor(logging.INFO):
            return
        message = record.to_json_line() if self._format == "json" else format_human(record)
        # `fields` is what ccrelay.logsetup.JsonFormatter merges into its JSON line; a callable,
        # so a human log line does not pay for the dump.
        self._logger.info(message, extra={"fields": partial(record.model_dump, mode="json")})

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        return None


class JsonlSink:
    """Appends records to ``latency-YYYY-MM-DD.jsonl`` (UTC day of the record) in ``directory``.

    Records are buffered in memory and appended by a background task, in a thread, every
    ``flush_interval_s`` or as soon as ``flush_max_records`` are waiting. Each file gets its lines
    in one ``write`` on an ``O_APPEND`` descriptor, so two processes can share a directory.
    """

    def __init__(
        self,
        directory: Path,
        *,
        flush_interval_s: float = 1.0,
        flush_max_records: int = 256,
        queue_max_records: int = 100_000,
    ) -> None:
        self.directory = directory
        self._interval = flush_interval_s
        self._flush_max = flush_max_records
        self._queue_max = queue_max_records
        self._buffer: list[LatencyRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0

    async def start(self) -> None:
        self._ensure_started()

    def _ensure_started(self) -> None:
        if self._task is None and not self._closing:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: the records wait for start() or the next emit
            self._task = loop.create_task(self._run(), name="ccrelay-jsonl-sink")

    async def emit(self, record: LatencyRecord) -> None:
        self.emit_nowait(record)

    def emit_nowait(self, record: LatencyRecord) -> None:
        if self._closing or len(self._buffer) >= self._queue_max:
            if self.dropped == 0:
                _log.warning("latency JSONL sink is closed or full; dropping records")
            self.dropped += 1
            return
        self._ensure_started()
        self._buffer.append(record)
        if len(self._buffer) == 1 or len(self._buffer) >= self._flush_max:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._buffer and not self._closing:
                await self._wake.wait()
            if len(self._buffer) < self._flush_max and not self._closing:
                # Let a few more records join this write.
                self._wake.clear()
                try:
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            batch, self._buffer = self._buffer, []
            if batch:
                try:
                    await asyncio.to_thread(self._append, batch)
                except OSError as exc:
                    _log.warning(
                        "could not append %d latency records to %s: %s",
                        len(batch),
                        self.directory,
                        exc,
                    )
            if self._closing and not self._buffer:
                return

    def _append(self, batch: Sequence[LatencyRecord]) -> None:
        by_file: dict[str, list[str]] = {}
        for record in batch:
            by_file.setdefault(jsonl_name(record.timestamp.date()), []).append(
                record.to_json_line() + "\n"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, lines in by_file.items():
            data = "".join(lines).encode("utf-8")
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        self._closing = True
        self._wake.set()
        if self._task is None:
            if self._buffer:  # emitted with no loop running, never started
                batch, self._buffer = self._buffer, []
                await asyncio.to_thread(self._append, batch)
            return
        task, self._task = self._task, None
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait([task])
            _log.warning("latency JSONL sink did not drain within %.1fs", timeout)


class MultiSink:
    """Fans every record out to several sinks; one failing sink does not starve the others."""

    def __init__(self, sinks: Sequence[RecordSink]) -> None:
        self.sinks = tuple(sinks)

    async def start(self) -> None:
        await asyncio.gather(*(sink.start() for sink in self.sinks))

    async def emit(self, record: LatencyRecord) -> None:
        self.emit_nowait(record)

    def emit_nowait(self, record: LatencyRecord) -> None:
        for sink in self.sinks:
            try:
                sink.emit_nowait(record)
            except Exception:
                _log.exception("latency sink %s failed to take a record", type(sink).__name__)

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        started = time.monotonic()
        results = await asyncio.gather(
            *(sink.aclose(timeout) for sink in self.sinks), return_exceptions=True
        )
        for sink, result in zip(self.sinks, results, strict=True):
            if isinstance(result, Exception):
                _log.warning("latency sink %s failed to close: %s", type(sink).__name__, result)
        _log.debug("latency sinks closed in %.3fs", time.monotonic() - started)
