"""An analyst's view: DuckDB reads the records a run wrote to S3 (moto), with the schema and the
queries of docs/records.md as written there, and gets the figures `ccrelay stats` prints."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ccrelay.cli.stats import run_stats
from ccrelay.latency import S3Sink
from ccrelay_config.telemetry import TelemetrySettings
from tests.client.latency.helpers import MotoEndpoint, s3_settings
from tests.client.latency.test_latency_stats import NOW, generated
from tests.conftest import S3Bucket

DOC = Path(__file__).resolve().parents[3] / "docs" / "records.md"


def documented_sql() -> list[str]:
    """The ```sql blocks of the DuckDB section, in order: the view, then the queries."""
    text = DOC.read_text()
    section = text.split("## DuckDB", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def download(client: Any, bucket: str, into: Path) -> int:
    """`aws s3 sync`, as the doc says: every object under its own key."""
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            path = into / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            count += 1
    return count


async def test_duckdb_with_the_documented_schema_agrees_with_stats(
    moto_endpoint: MotoEndpoint, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    settings = s3_settings(
        s3_bucket.name, tmp_path / "spool", moto_endpoint.url, batch_max_records=40
    )
    records = generated(900, seed=31, span=timedelta(hours=30))
    sink = S3Sink(settings)
    for record in records:
        await sink.emit(record)
    await sink.aclose(timeout=20)

    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        run_stats,
        TelemetrySettings(jsonl_dir=tmp_path, s3=settings),
        timedelta(hours=24),
        "s3",
        True,
        out,
        err=err,
        now=NOW,
    )
    assert code == 0, err.getvalue()
    stats = json.loads(out.getvalue())

    local = tmp_path / "ccrelay-records"
    objects = await asyncio.to_thread(download, s3_bucket.client, s3_bucket.name, local)
    assert objects > 32, "more files than DuckDB samples by default"
    view, requests_sql, attempts_sql = documented_sql()
    db = duckdb.connect()
    db.execute(view.replace("'ccrelay-records/", f"'{local}/team/latency/"))
    # every column typed as documented, however null it is in the first files
    types = {row[0]: row[1] for row in db.execute("DESCRIBE latency").fetchall()}
    assert types["baseline_usd"] == "DOUBLE" and types["ttfb_ms"] == "DOUBLE"
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert {"dt", "hour"} <= set(types), "the partitions are columns too"
    at_now = f"TIMESTAMPTZ '{NOW.isoformat()}'"

    by_request = {
        (row[0], row[1]): row
        for row in db.execute(requests_sql.replace("now()", at_now)).fetchall()
    }
    mine = {(row["backend"], row["model"]): row for row in stats["requests"]}
    assert set(by_request) == set(mine) and len(mine) == 3
    for key, row in mine.items():
        _, _, requests, errors, p50, p95, ttfb_p95, attempts, cost, saving = by_request[key]
        assert (requests, errors, attempts) == (row["requests"], row["errors"], row["attempts"])
        assert p50 == pytest.approx(row["latency_p50_ms"])
        assert p95 == pytest.approx(row["latency_p95_ms"])
        assert ttfb_p95 == pytest.approx(row["ttfb_p95_ms"])
        assert cost == pytest.approx(row["cost_usd"])
        assert saving == pytest.approx(row["saving_usd"])

    by_attempt = {
        (row[0], row[1]): row
        for row in db.execute(attempts_sql.replace("now()", at_now)).fetchall()
    }
    rows = {(row["backend"], row["model"]): row for row in stats["rows"]}
    assert set(by_attempt) == set(rows)
    for key, row in rows.items():
        _, _, calls, error_rate, p99 = by_attempt[key]
        assert calls == row["calls"]
        assert error_rate == pytest.approx(row["error_rate"])
        assert p99 == pytest.approx(row["latency_p99_ms"])
    window = [r for r in records if NOW - timedelta(hours=24) <= r.timestamp <= NOW]
    assert sum(row["requests"] for row in mine.values()) == sum(
        1 for r in window if r.kind == "request"
    )
