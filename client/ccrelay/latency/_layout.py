"""Where records live: local day files, S3 object keys, spool file names. Shared by sinks and stats."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from ccrelay.latency.record import LatencyRecord

JSONL_PATTERN = "latency-{day}.jsonl"
_SPOOL_NAME = re.compile(
    r"^(?P<day>\d{4}-\d{2}-\d{2})T(?P<hour>\d{2})_(?P<batch>[0-9a-f]{32})\.jsonl\.gz$"
)
_KEY_PARTITION = re.compile(
    r"/?dt=(?P<day>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/[^/]+\.jsonl\.gz$"
)

Partition = tuple[str, str]
"""(``YYYY-MM-DD``, ``HH``) of a record's UTC timestamp."""


def partition_of(timestamp: datetime) -> Partition:
    return timestamp.strftime("%Y-%m-%d"), timestamp.strftime("%H")


def jsonl_name(day: date) -> str:
    return JSONL_PATTERN.format(day=day.isoformat())


def days_between(start: datetime, end: datetime) -> list[date]:
    """Every UTC date from ``start``'s to ``end``'s, both included."""
    first, last = start.date(), end.date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def clean_prefix(prefix: str) -> str:
    return prefix.strip("/")


def day_prefix(prefix: str, day: date) -> str:
    """The S3 prefix of one day's partitions, ending in a slash."""
    base = clean_prefix(prefix)
    return f"{base}/dt={day.isoformat()}/" if base else f"dt={day.isoformat()}/"


def object_key(prefix: str, partition: Partition, batch_id: str) -> str:
    day, hour = partition
    return f"{day_prefix(prefix, date.fromisoformat(day))}hour={hour}/{batch_id}.jsonl.gz"


def key_partition(key: str) -> Partition | None:
    match = _KEY_PARTITION.search(key)
    return None if match is None else (match["day"], match["hour"])


def partition_start(partition: Partition) -> datetime:
    day, hour = partition
    return datetime.fromisoformat(f"{day}T{hour}:00:00+00:00")


def spool_name(partition: Partition, batch_id: str) -> str:
    day, hour = partition
    return f"{day}T{hour}_{batch_id}.jsonl.gz"


def parse_spool_name(name: str) -> tuple[Partition, str] | None:
    match = _SPOOL_NAME.match(name)
    return None if match is None else ((match["day"], match["hour"]), match["batch"])


def encode_batch(records: Iterable[LatencyRecord]) -> bytes:
    """Gzip JSONL; ``mtime=0`` so the same batch always gives the same bytes."""
    text = "".join(record.to_json_line() + "\n" for record in records)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def decode_lines(data: bytes, *, gzipped: bool) -> list[bytes]:
    raw = gzip.decompress(data) if gzipped else data
    return [line for line in raw.splitlines() if line.strip()]
