"""S3Sink against moto: in-process (`mock_aws`) and over real loopback HTTP (`moto_endpoint`)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccrelay.latency import LatencyRecord, S3Sink
from tests.client.latency.helpers import (
    MotoEndpoint,
    StallingEndpoint,
    bucket_objects,
    make_record,
    names_in,
    s3_settings,
    spool_files,
    spread_records,
)
from tests.conftest import S3Bucket, eventually

KEY = re.compile(r"^team/latency/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/[0-9a-f]{32}\.jsonl\.gz$")
START = datetime(2025, 3, 1, 22, 10, tzinfo=UTC)


def assert_exactly_once(
    objects: dict[str, list[LatencyRecord]], expected: list[LatencyRecord]
) -> None:
    counts = Counter(r.request_id for records in objects.values() for r in records)
    assert counts == Counter(r.request_id for r in expected)
    assert max(counts.values()) == 1
    stored = {r.request_id: r for records in objects.values() for r in records}
    assert all(stored[r.request_id] == r for r in expected)


async def test_records_land_partitioned_by_hour_and_complete(
    s3_bucket: S3Bucket, spool_dir: Path
) -> None:
    # No endpoint_url: the AWS endpoint, which moto's mock_aws serves in process.
    sink = S3Sink(s3_settings(s3_bucket.name, spool_dir))
    records = spread_records(45, START, timedelta(hours=3), seed=1)  # crosses midnight
    for record in records:
        await sink.emit(record)
    await sink.aclose(timeout=10)

    objects = bucket_objects(s3_bucket.client, s3_bucket.name)
    assert_exactly_once(objects, records)
    partitions = set()
    for key, stored in objects.items():
        match = KEY.match(key)
        assert match, key
        day, hour = match.groups()
        partitions.add((day, hour))
        assert 1 <= len(stored) <= 10  # batch_max_records
        assert {(r.timestamp.strftime("%Y-%m-%d"), r.timestamp.strftime("%H")) for r in stored} == {
            (day, hour)
        }
    assert partitions == {
        ("2025-03-01", "22"),
        ("2025-03-01", "23"),
        ("2025-03-02", "00"),
        ("2025-03-02", "01"),
    }
    assert spool_files(spool_dir) == []
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=next(iter(objects)))
    assert head["ContentType"] == "application/gzip"


async def test_a_batch_is_sent_when_it_reaches_its_age(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, spool_dir: Path
) -> None:
    settings = s3_settings(s3_bucket.name, spool_dir, moto_endpoint.url, batch_max_age_s=0.1)
    sink = S3Sink(settings)
    records = [make_record(n) for n in range(3)]  # far below batch_max_records
    for record in records:
        await sink.emit(record)
    await eventually(lambda: len(bucket_objects(s3_bucket.client, s3_bucket.name)) == 1)
    assert_exactly_once(bucket_objects(s3_bucket.client, s3_bucket.name), records)
    await sink.aclose(timeout=5)


async def test_s3_down_for_a_while_then_back_every_record_once(
    moto_endpoint: MotoEndpoint,
    s3_bucket: S3Bucket,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await moto_endpoint.stop()  # connections refused from here on
    sink = S3Sink(s3_settings(s3_bucket.name, spool_dir, moto_endpoint.url))
    records = spread_records(35, START, timedelta(minutes=20), seed=2)
    for record in records[:20]:
        await sink.emit(record)
    await eventually(lambda: len(spool_files(spool_dir)) == 2)

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and "S3 latency upload" in r.getMessage()
        ]

    await eventually(lambda: len(warnings()) == 1)
    await asyncio.sleep(0.3)  # more retries fail meanwhile
    assert bucket_objects(s3_bucket.client, s3_bucket.name) == {}
    assert len(warnings()) == 1  # one warning when failures start, not one per retry
    assert "EndpointConnectionError" in warnings()[0]

    await moto_endpoint.start()
    for record in records[20:]:
        await sink.emit(record)
    await eventually(lambda: len(bucket_objects(s3_bucket.client, s3_bucket.name)) == 3)
    await sink.aclose(timeout=5)
    assert_exactly_once(bucket_objects(s3_bucket.client, s3_bucket.name), records)
    assert spool_files(spool_dir) == []
    assert "recovered" in caplog.text


async def test_missing_bucket_then_created(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, spool_dir: Path
) -> None:
    sink = S3Sink(s3_settings("created-later", spool_dir, moto_endpoint.url))
    records = [make_record(n) for n in range(25)]
    for record in records:
        await sink.emit(record)
    await eventually(lambda: len(spool_files(spool_dir)) == 2)
    s3_bucket.client.create_bucket(Bucket="created-later")
    await sink.aclose(timeout=5)
    assert_exactly_once(bucket_objects(s3_bucket.client, "created-later"), records)
    assert spool_files(spool_dir) == []


async def test_ambiguous_failure_retries_to_the_same_key(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, spool_dir: Path
) -> None:
    moto_endpoint.store_then_fail = 2  # S3 stores the object, the answer is a 500
    sink = S3Sink(s3_settings(s3_bucket.name, spool_dir, moto_endpoint.url))
    records = [make_record(n) for n in range(20)]
    for record in records:
        await sink.emit(record)
    await eventually(lambda: moto_endpoint.store_then_fail == 0 and not spool_files(spool_dir))
    await sink.aclose(timeout=5)
    objects = bucket_objects(s3_bucket.client, s3_bucket.name)
    assert len(objects) == 2
    assert_exactly_once(objects, records)


async def test_slow_s3_never_slows_emit_and_shutdown_is_bounded(
    stalling_endpoint: StallingEndpoint,
    s3_bucket: S3Bucket,
    moto_endpoint: MotoEndpoint,
    spool_dir: Path,
) -> None:
    settings = s3_settings(s3_bucket.name, spool_dir, stalling_endpoint.url, read_timeout_s=30)
    sink = S3Sink(settings)
    records = spread_records(2000, START, timedelta(minutes=30), seed=3)
    for record in records[:10]:
        await sink.emit(record)
    await asyncio.wait_for(stalling_endpoint.received.wait(), 5)  # an upload is now hanging

    durations = []
    for record in records[10:]:
        started = time.perf_counter()
        await sink.emit(record)
        durations.append(time.perf_counter() - started)
        if len(durations) % 100 == 0:
            await asyncio.sleep(0)  # let the batcher spool between bursts
    durations.sort()
    print(
        f"emit: median {durations[len(durations) // 2] * 1e6:.1f} us, p99 "
        f"{durations[int(len(durations) * 0.99)] * 1e6:.1f} us, max {durations[-1] * 1e6:.1f} us"
    )
    assert not stalling_endpoint.release.is_set()  # the upload hung the whole time
    assert durations[len(durations) // 2] < 0.0002
    assert durations[int(len(durations) * 0.99)] < 0.002
    # The worst single call can include a GIL hand-over or the OS scheduling another process;
    # an emit that waited on this S3 would take the whole read timeout (30 s).
    assert durations[-1] < 0.25

    started = time.perf_counter()
    await sink.aclose(timeout=0.5)
    assert time.perf_counter() - started < 2.0
    # Nothing lost: every record waits in the spool for the next start.
    spooled = [
        LatencyRecord.from_json_line(line)
        for path in spool_files(spool_dir)
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    assert Counter(r.request_id for r in spooled) == Counter(r.request_id for r in records)

    # The next process, with a working S3, uploads the spool on start, without emitting.
    stalling_endpoint.release.set()
    later = S3Sink(s3_settings(s3_bucket.name, spool_dir, moto_endpoint.url))
    await later.start()
    await eventually(lambda: not spool_files(spool_dir))
    await later.aclose(timeout=5)
    assert_exactly_once(bucket_objects(s3_bucket.client, s3_bucket.name), records)


async def test_spool_from_a_previous_process_is_uploaded_on_start(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, spool_dir: Path, refused_url: str
) -> None:
    crashed = S3Sink(s3_settings(s3_bucket.name, spool_dir, refused_url))
    records = [make_record(n) for n in range(13)]
    for record in records:
        await crashed.emit(record)
    started = time.perf_counter()
    await crashed.aclose(timeout=1)
    assert time.perf_counter() - started < 3
    assert len(spool_files(spool_dir)) == 2

    restarted = S3Sink(s3_settings(s3_bucket.name, spool_dir, moto_endpoint.url))
    await restarted.start()
    await eventually(lambda: restarted.uploaded_batches == 2)
    assert spool_files(spool_dir) == []
    await restarted.aclose(timeout=5)
    assert_exactly_once(bucket_objects(s3_bucket.client, s3_bucket.name), records)


async def test_full_queue_drops_with_a_warning_and_never_raises(
    s3_bucket: S3Bucket, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = S3Sink(s3_settings(s3_bucket.name, spool_dir, queue_max_records=50))
    for n in range(80):  # no await yields to the loop in between: the batcher cannot run
        await sink.emit(make_record(n))
    assert sink.dropped == 30
    assert "queue is full" in caplog.text
    await sink.aclose(timeout=5)
    await sink.emit(make_record(99))  # after close: dropped, no error
    assert sink.dropped == 31
    objects = bucket_objects(s3_bucket.client, s3_bucket.name)
    assert sum(len(v) for v in objects.values()) == 50


async def test_close_without_records_is_immediate(spool_dir: Path, refused_url: str) -> None:
    sink = S3Sink(s3_settings("never-used", spool_dir, refused_url))
    await sink.aclose(timeout=5)
    assert spool_files(spool_dir) == []


def test_spool_dir_must_be_resolved() -> None:
    from ccrelay_config.telemetry import S3SinkSettings

    with pytest.raises(ValueError, match="resolve"):
        S3Sink(S3SinkSettings(bucket="abc"))


@pytest.fixture(autouse=True)
def _quiet_botocore(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="botocore")
    caplog.set_level(logging.DEBUG, logger="ccrelay.telemetry")


async def test_s3_credentials_never_reach_logs_files_or_objects(
    moto_endpoint: MotoEndpoint,
    s3_bucket: S3Bucket,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pydantic import SecretStr

    from ccrelay.latency import LatencyRecorder
    from ccrelay_config.pricing import PriceTable
    from ccrelay_config.telemetry import TelemetrySettings

    key_id, secret = "AKIAEXAMPLESECRETID", "wJalrXUtnFEMI-secret-access-key"
    caplog.set_level(logging.DEBUG, logger="ccrelay")
    s3 = s3_settings(
        "not-yet-a-bucket",
        tmp_path / "spool",
        moto_endpoint.url,
        access_key_id=SecretStr(key_id),
        secret_access_key=SecretStr(secret),
    )
    settings = TelemetrySettings(s3=s3).resolved({"CCRELAY_STATE_DIR": str(tmp_path)})
    recorder = LatencyRecorder.from_settings(settings, PriceTable())
    for n in range(12):
        recorder.record(
            request_id=f"r{n}",
            backend="cerebras",
            backend_type="cerebras",
            model="qwen-3-coder-480b",
            outcome="ok",
            attempt=1,
            latency_ms=10,
        )
    await eventually(lambda: "S3 latency upload" in caplog.text)  # NoSuchBucket, logged
    s3_bucket.client.create_bucket(Bucket="not-yet-a-bucket")
    await recorder.aclose(5)

    texts = [caplog.text, repr(settings), repr(recorder.sink)]
    [day_file] = names_in(tmp_path, "latency-*.jsonl")
    texts.append((tmp_path / day_file).read_text())
    objects = bucket_objects(s3_bucket.client, "not-yet-a-bucket")
    texts += [r.to_json_line() for records in objects.values() for r in records]
    assert sum(len(records) for records in objects.values()) == 12
    for text in texts:
        assert key_id not in text
        assert secret not in text
