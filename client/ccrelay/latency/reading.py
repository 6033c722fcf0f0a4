"""Read latency records back, from the local JSONL day files or the S3 partitions of a window.

Lines are streamed, one file or object at a time, and parsed into plain dicts: ``ccrelay stats``
folds them into its groups as they come, so its memory does not grow with the number of
records (a list of a million pydantic records took 2.1 GB). Lines that are not records (a
torn write, another tool's line) are skipped and counted.

Reading is synchronous (the CLI has no event loop); async code calls it in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ccrelay.errors import CcrelayError
from ccrelay.latency._layout import (
    day_prefix,
    days_between,
    decode_lines,
    jsonl_name,
    key_partition,
    partition_start,
)
from ccrelay.latency.record import LatencyRecord
from ccrelay_config.telemetry import S3SinkSettings

__all__ = [
    "RecordLines",
    "StatsSourceError",
    "local_lines",
    "read_local_records",
    "read_s3_records",
    "s3_lines",
]

_log = logging.getLogger("ccrelay.telemetry")
_HOUR_S = 3600
_REQUIRED = ("timestamp", "request_id", "backend", "model", "outcome", "latency_ms")


class StatsSourceError(CcrelayError):
    """The records could not be read (S3 unreachable, access denied, ...)."""


class RecordLines:
    """The records of a window as dicts, parsed line by line; ``skipped`` counts the bad ones.

    A dict is kept when it has the fields every record has and its timestamp falls in
    ``since <= timestamp <= until``; ``timestamp`` is replaced by the parsed datetime.
    """

    def __init__(self, lines: Iterable[bytes], since: datetime, until: datetime) -> None:
        self._lines = lines
        self.since = since
        self.until = until
        self.skipped = 0
        self.read = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in self._lines:
            record = self._parse(line)
            if record is None:
                self.skipped += 1
            elif self.since <= record["timestamp"] <= self.until:
                self.read += 1
                yield record

    @staticmethod
    def _parse(line: bytes) -> dict[str, Any] | None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict) or any(name not in record for name in _REQUIRED):
            return None
        try:
            record["timestamp"] = datetime.fromisoformat(record["timestamp"])
        except (TypeError, ValueError):
            return None
        if record["timestamp"].tzinfo is None or not isinstance(record["latency_ms"], (int, float)):
            return None
        return record


def local_lines(directory: Path, since: datetime, until: datetime) -> Iterator[bytes]:
    """The lines of the ``latency-YYYY-MM-DD.jsonl`` day files the window touches."""
    for day in days_between(since, until):
        path = directory / jsonl_name(day)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StatsSourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with handle:
            for line in handle:
                if line.strip():
                    yield line


def s3_lines(
    settings: S3SinkSettings, since: datetime, until: datetime, *, client: Any = None
) -> Iterator[bytes]:
    """The lines of the objects in the hourly partitions of the window, object by object."""
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        from ccrelay.latency.s3 import make_s3_client

        client = make_s3_client(settings, max_attempts=3)
    first_hour = since.timestamp() - _HOUR_S
    try:
        paginator = client.get_paginator("list_objects_v2")
        for day in days_between(since, until):
            pages = paginator.paginate(
                Bucket=settings.bucket, Prefix=day_prefix(settings.prefix, day)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    partition = key_partition(item["Key"])
                    if partition is None:
                        continue
                    start = partition_start(partition).timestamp()
                    if start <= first_hour or start > until.timestamp():
                        continue
                    body = client.get_object(Bucket=settings.bucket, Key=item["Key"])["Body"]
                    yield from decode_lines(body.read(), gzipped=True)
    except (BotoCoreError, ClientError) as exc:
        raise StatsSourceError(
            f"cannot read latency records from s3://{settings.bucket}: {exc}"
        ) from exc


def _records(
    lines: Iterable[bytes], since: datetime, until: datetime, where: str
) -> list[LatencyRecord]:
    records: list[LatencyRecord] = []
    skipped = 0
    for line in lines:
        try:
            record = LatencyRecord.from_json_line(line)
        except ValidationError:
            skipped += 1
            continue
        if since <= record.timestamp <= until:
            records.append(record)
    if skipped:
        _log.warning("skipped %d unreadable latency record line(s) in %s", skipped, where)
    return records


def read_local_records(directory: Path, since: datetime, until: datetime) -> list[LatencyRecord]:
    """The window's records from the local day files, validated (for tools and tests; ``stats``
    streams with :class:`RecordLines` instead)."""
    return _records(local_lines(directory, since, until), since, until, str(directory))


def read_s3_records(
    settings: S3SinkSettings, since: datetime, until: datetime, *, client: Any = None
) -> list[LatencyRecord]:
    """The window's records from S3, validated (see :func:`read_local_records`)."""
    lines = s3_lines(settings, since, until, client=client)
    return _records(lines, since, until, f"s3://{settings.bucket}")
