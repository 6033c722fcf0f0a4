"""Latency records: one per backend attempt and one per client request, to a log line, local
JSONL files and S3 (schema: docs/records.md).

Backends report attempts to :meth:`LatencyRecorder.on_attempt`, the router requests to
:meth:`LatencyRecorder.on_request`; ``ccrelay stats`` reads the records back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.latency.reading import StatsSourceError, read_local_records, read_s3_records
    from ccrelay.latency.record import CacheStatus, LatencyRecord
    from ccrelay.latency.recorder import LatencyRecorder, build_sink
    from ccrelay.latency.s3 import S3Sink, make_s3_client
    from ccrelay.latency.sinks import JsonlSink, LogSink, MultiSink, RecordSink, format_human
    from ccrelay.latency.stats import GroupStats, StatsReport, compute_stats, percentile
    from ccrelay.latency.stats_text import render_table

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.latency.record": ("CacheStatus", "LatencyRecord"),
        "ccrelay.latency.recorder": ("LatencyRecorder", "build_sink"),
        "ccrelay.latency.s3": ("S3Sink", "make_s3_client"),
        "ccrelay.latency.sinks": (
            "JsonlSink",
            "LogSink",
            "MultiSink",
            "RecordSink",
            "format_human",
        ),
        "ccrelay.latency.reading": ("StatsSourceError", "read_local_records", "read_s3_records"),
        "ccrelay.latency.stats": ("GroupStats", "StatsReport", "compute_stats", "percentile"),
        "ccrelay.latency.stats_text": ("render_table",),
    },
)

__all__ = [
    "CacheStatus",
    "GroupStats",
    "JsonlSink",
    "LatencyRecord",
    "LatencyRecorder",
    "LogSink",
    "MultiSink",
    "RecordSink",
    "S3Sink",
    "StatsReport",
    "StatsSourceError",
    "build_sink",
    "compute_stats",
    "format_human",
    "make_s3_client",
    "percentile",
    "read_local_records",
    "read_s3_records",
    "render_table",
]
