"""Latency records to S3 as gzip JSONL objects, without ever making a request wait on S3.

Pipeline, all off the request path::

    emit ─▶ current batch (memory) ─sealed by count or age─▶ spool file ─▶ put_object ─▶ unlink

- A sealed batch is split by the hour of its records' timestamps and each part gets a random batch
  id once, so its object key ``{prefix}/dt=YYYY-MM-DD/hour=HH/{batch_id}.jsonl.gz`` never changes.
- Every batch is written to the spool directory (atomically) before its first upload and removed
  only after S3 acknowledged it. An upload that failed ambiguously (the object stored, the answer
  lost) is retried to the same key and overwrites the object rather than duplicating it, so each
  record lands exactly once. A crash loses at most the unsealed batch in memory.
- Failures are retried with exponential backoff (``retry_initial_s`` doubling up to
  ``retry_max_s``); they log one warning when uploads start failing and one line when they
  recover, and never raise into the caller.
- Spool files left by an earlier process are uploaded when the sink starts.
- ``aclose`` seals and spools what is in memory, then uploads for as long as its timeout allows;
  what is left stays spooled for the next start.

boto3 runs in a thread (``asyncio.to_thread``). botocore's own retries are off (we retry from the
spool) and its timeouts come from the settings, so a stalled S3 holds one thread, not the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccrelay.latency._layout import (
    Partition,
    encode_batch,
    object_key,
    parse_spool_name,
    partition_of,
    spool_name,
)
from ccrelay.latency.record import LatencyRecord
from ccrelay_config.telemetry import S3SinkSettings

__all__ = ["S3Sink", "make_s3_client"]

_log = logging.getLogger("ccrelay.telemetry")

SPOOL_GRACE_S = 30.0
"""The longest ``aclose`` waits for records in memory to reach the local spool."""

S3ClientFactory = Callable[[], Any]


def make_s3_client(settings: S3SinkSettings, *, max_attempts: int = 1) -> Any:
    """A boto3 S3 client for ``settings`` (path-style addressing when ``endpoint_url`` is set)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
        # Plain Content-MD5-free PUTs work with MinIO and older S3-compatible stores too.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    key_id: str | None = None
    secret: str | None = None  # both None: boto3's own credential chain
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        key_id = settings.access_key_id.get_secret_value()
        secret = settings.secret_access_key.get_secret_value()
    return boto3.session.Session().client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=config,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


@dataclass(frozen=True, slots=True)
class _Batch:
    partition: Partition
    batch_id: str
    records: list[LatencyRecord]

    @property
    def spool_name(self) -> str:
        return spool_name(self.partition, self.batch_id)


class _Spool:
    """Batches waiting for S3, one gzip JSONL file each, named after their partition and id."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, batch: _Batch) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.directory / batch.spool_name
        temporary = self.directory / f".{batch.spool_name}.{os.getpid()}.tmp"
        temporary.write_bytes(encode_batch(batch.records))
        os.replace(temporary, final)

    def write_many(self, batches: list[_Batch]) -> tuple[int, OSError | None]:
        """Write batches in order; how many were written, and the error that stopped it."""
        for written, batch in enumerate(batches):
            try:
                self.write(batch)
            except OSError as exc:
                return written, exc
        return len(batches), None

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path for path in self.directory.iterdir() if parse_spool_name(path.name) is not None
        )


class _UploadFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class S3Sink:
    """Batches records into gzip JSONL objects on S3; see the module docstring."""

    def __init__(
        self,
        settings: S3SinkSettings,
        *,
        spool_dir: Path | None = None,
        client_factory: S3ClientFactory | None = None,
    ) -> None:
        directory = spool_dir if spool_dir is not None else settings.spool_dir
        if directory is None:
            raise ValueError("S3SinkSettings.spool_dir is unset: resolve the telemetry settings")
        self.settings = settings
        self._spool = _Spool(directory)
        self._client_factory = client_factory or (lambda: make_s3_client(settings))
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._current: list[LatencyRecord] = []
        self._current_since = 0.0
        self._sealed: deque[_Batch] = deque()
        self._held = 0
        self._batch_wake = asyncio.Event()
        self._upload_wake = asyncio.Event()
        self._final_pass = asyncio.Event()
        self._batcher: asyncio.Task[None] | None = None
        self._uploader: asyncio.Task[None] | None = None
        self._closing = False
        self._failing = False
        self._dropping = False
        self._delay = settings.retry_initial_s
        self.dropped = 0
        self.uploaded_batches = 0

    @property
    def spool_dir(self) -> Path:
        return self._spool.directory

    @property
    def target(self) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.prefix.strip('/')}"

    # -- request path -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background tasks; batches spooled by an earlier process upload now."""
        self._ensure_started()

    def _ensure_started(self) -> None:
        if self._closing or self._batcher is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the records wait for start() or the next emit
        self._batcher = loop.create_task(self._run_batcher(), name="ccrelay-s3-batcher")
        self._uploader = loop.create_task(self._run_uploader(), name="ccrelay-s3-uploader")
        for task in (self._batcher, self._uploader):
            task.add_done_callback(_report_crash)

    async def emit(self, record: LatencyRecord) -> None:
        """Take one record: O(1), never waits on disk or network."""
        self.emit_nowait(record)

    def emit_nowait(self, record: LatencyRecord) -> None:
        if self._closing or self._held >= self.settings.queue_max_records:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                _log.warning(
                    "S3 latency sink %s; dropping records",
                    "is closed" if self._closing else "queue is full (the spool is not keeping up)",
                )
            return
        self._ensure_started()
        self._current.append(record)
        self._held += 1
        if len(self._current) == 1:
            self._current_since = time.monotonic()
            self._batch_wake.set()
        if len(self._current) >= self.settings.batch_max_records:
            self._seal()

    def _seal(self) -> None:
        if not self._current:
            return
        groups: dict[Partition, list[LatencyRecord]] = {}
        for record in self._current:
            groups.setdefault(partition_of(record.timestamp), []).append(record)
        for partition, records in groups.items():
            self._sealed.append(_Batch(partition, uuid.uuid4().hex, records))
        self._current = []
        self._batch_wake.set()

    # -- memory -> spool ----------------------------------------------------------------------

    async def _run_batcher(self) -> None:
        while True:
            timeout: float | None = None
            if self._current:
                age_limit = self._current_since + self.settings.batch_max_age_s
                timeout = max(0.0, age_limit - time.monotonic())
            if not self._sealed and not self._closing and timeout != 0.0:
                try:
                    async with asyncio.timeout(timeout):
                        await self._batch_wake.wait()
                except TimeoutError:
                    pass
            self._batch_wake.clear()
            aged = time.monotonic() >= self._current_since + self.settings.batch_max_age_s
            if self._current and (self._closing or aged):
                self._seal()
            if not await self._spool_sealed():
                await asyncio.sleep(self.settings.retry_initial_s)
            if self._closing and not self._sealed and not self._current:
                return

    async def _spool_sealed(self) -> bool:
        """Write every sealed batch to the spool (one thread hop); False if the disk failed."""
        while self._sealed:
            batches = list(self._sealed)
            written, error = await asyncio.to_thread(self._spool.write_many, batches)
            for batch in batches[:written]:
                self._sealed.popleft()
                self._held -= len(batch.records)
            if written:
                self._dropping = False
                self._upload_wake.set()
            if error is not None:
                _log.warning("could not spool latency records to %s: %s", self.spool_dir, error)
                return False
        return True

    # -- spool -> S3 ----------------------------------------------------------------------------

    async def _run_uploader(self) -> None:
        """Upload the spool whenever it grows; back off while S3 fails; end after the final pass.

        This task is the only uploader of its process, so a batch is never sent twice at once.
        """
        while True:
            self._upload_wake.clear()
            final = self._final_pass.is_set()
            succeeded = await self._upload_pending()
            if final:
                return
            if succeeded:
                self._delay = self.settings.retry_initial_s
                await self._upload_wake.wait()
                continue
            delay = self._delay
            self._delay = min(self._delay * 2, self.settings.retry_max_s)
            try:
                async with asyncio.timeout(delay):
                    await self._final_pass.wait()  # closing cuts the backoff short
            except TimeoutError:
                pass

    async def _upload_pending(self) -> bool:
        """Upload every spooled batch in order; False at the first failure."""
        try:
            pending = await asyncio.to_thread(self._spool.pending)
        except OSError as exc:
            _log.warning("could not list the S3 spool %s: %s", self.spool_dir, exc)
            return False
        for path in pending:
            try:
                await asyncio.to_thread(self._upload_file, path)
            except _UploadFailed as exc:
                self._note_failure(exc, len(pending))
                return False
            self.uploaded_batches += 1
        if self._failing and pending:
            self._failing = False
            _log.warning("S3 latency uploads to %s recovered", self.target)
        return True

    def _s3(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _close_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _upload_file(self, path: Path) -> None:
        """In a thread: put one spooled batch, then remove it from the spool."""
        parsed = parse_spool_name(path.name)
        if parsed is None:  # pragma: no cover - pending() lists parsable names only
            return
        partition, batch_id = parsed
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return  # another process sharing the spool uploaded it
        except OSError as exc:
            raise _UploadFailed(exc) from exc
        try:
            self._s3().put_object(
                Bucket=self.settings.bucket,
                Key=object_key(self.settings.prefix, partition, batch_id),
                Body=body,
                ContentType="application/gzip",
            )
        except _boto_errors() as exc:
            raise _UploadFailed(exc) from exc
        except Exception as exc:  # a bug or an unexpected library error: log it, keep the batch
            _log.exception("unexpected error uploading latency records to %s", self.target)
            raise _UploadFailed(exc) from exc
        path.unlink(missing_ok=True)

    def _note_failure(self, exc: _UploadFailed, spooled: int) -> None:
        if self._failing:
            _log.debug("S3 latency upload still failing: %s", exc)
            return
        self._failing = True
        _log.warning(
            "S3 latency upload to %s failed (%s); %d batch(es) kept in %s, retrying in %gs",
            self.target,
            exc,
            spooled,
            self.spool_dir,
            self._delay,
        )

    # -- shutdown ------------------------------------------------------------------------------

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Spool what is in memory, then upload for at most ``timeout`` seconds.

        Writing memory to the local spool is not cut short by ``timeout`` (it takes milliseconds,
        and cutting it short would lose records); it is capped at ``SPOOL_GRACE_S`` in case the
        disk itself hangs. Batches not uploaded in time stay spooled for the next start.
        """
        if self._closing:
            return
        self._seal()
        if self._batcher is None and not self._sealed:
            self._closing = True
            return
        self._ensure_started()
        self._closing = True
        assert self._batcher is not None and self._uploader is not None
        self._batch_wake.set()
        done, _ = await asyncio.wait([self._batcher], timeout=max(timeout, SPOOL_GRACE_S))
        if not done:
            self._batcher.cancel()
            await asyncio.wait([self._batcher])
            _log.error(
                "S3 latency sink: %d record(s) could not be spooled to %s before shutdown",
                self._held,
                self.spool_dir,
            )
        # One last pass over the whole spool, by the uploader itself, within the timeout.
        self._final_pass.set()
        self._upload_wake.set()
        done, _ = await asyncio.wait([self._uploader], timeout=timeout)
        if done:
            await asyncio.to_thread(self._close_client)
        else:
            # An upload still in flight finishes in its thread (to the same key: harmless).
            self._uploader.cancel()
            await asyncio.wait([self._uploader])
        left = await asyncio.to_thread(self._spool.pending)
        if left:
            _log.warning(
                "S3 latency sink closed with %d batch(es) spooled in %s; they upload on next start",
                len(left),
                self.spool_dir,
            )


def _boto_errors() -> tuple[type[BaseException], ...]:
    """What an upload can fail with. botocore is imported here, when S3 is used: a gateway
    without S3 does not pay for it at start (issue 15)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError, OSError


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("%s stopped", task.get_name(), exc_info=task.exception())
