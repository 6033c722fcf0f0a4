"""What `ccrelay stats` costs on a big window: peak memory and time for 1M records.

Run through ``python -m bench stats``. Writes a day file of N records (half attempts, half
requests, four backends), then runs ``ccrelay stats --json`` over it in a fresh interpreter
and reads that process's peak RSS (``ru_maxrss``), beside the same interpreter after importing
the command without reading anything, so the figure is what the records cost. Before the
streaming reader (issue 16) the command held every record as a pydantic object: 2.1 GB for 1M.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench._table import Row

__all__ = ["rows"]

FULL_N = 1_000_000
QUICK_N = 100_000
TARGET_MB = 300.0
_BACKENDS = (
    ("cerebras", "cerebras", "gpt-oss-120b"),
    ("pod", "runpod", "qwen3-coder:30b"),
    ("litellm", "openai", "qwen3-coder"),
    ("claude", "anthropic", "claude-sonnet-4-5"),
)

_PROBE = """
import io, json, resource, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from ccrelay.cli.stats import run_stats
from ccrelay_config.telemetry import TelemetrySettings
directory, now, read = Path(sys.argv[1]), datetime.fromisoformat(sys.argv[2]), sys.argv[3] == "1"
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if read:
    out = io.StringIO()
    code = run_stats(TelemetrySettings(jsonl_dir=directory), timedelta(days=2),
                     "local", True, out, err=io.StringIO(), now=now)
    assert code == 0
    total = json.loads(out.getvalue())
    count = total["total"]["calls"] + total["requests_total"]["requests"]
else:
    count = 0
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "idle_kb": idle,
                  "seconds": time.perf_counter() - started, "records": count}))
"""


def _write(directory: Path, count: int, now: datetime) -> None:
    """Half attempts, half requests. Each line is a real record's JSON with its measurements
    varied, so the file always has the schema the gateway writes."""
    from ccrelay.latency.record import LatencyRecord, format_timestamp

    common = {"request_id": "", "backend": "", "backend_type": "", "model": "", "route": "default"}
    attempt = LatencyRecord(
        timestamp=now, outcome="ok", latency_ms=0, attempt=1, streamed=True, **common
    ).model_dump(mode="json")
    request = LatencyRecord(
        timestamp=now,
        outcome="ok",
        latency_ms=0,
        streamed=True,
        kind="request",
        requested_model="claude-sonnet-4-5",
        attempts=1,
        failovers=0,
        backoff_ms=0.0,
        baseline_usd=0.01,
        **common,
    ).model_dump(mode="json")
    rng = random.Random(16)
    path = directory / f"latency-{now:%Y-%m-%d}.jsonl"
    with path.open("wb") as handle:
        for n in range(count // 2):
            backend, backend_type, model = _BACKENDS[n % len(_BACKENDS)]
            ok = rng.random() > 0.05
            measured = {
                "timestamp": format_timestamp(now - timedelta(seconds=rng.random() * 80_000)),
                "request_id": f"req_{n:024x}",
                "backend": backend,
                "backend_type": backend_type,
                "model": model,
                "outcome": "ok" if ok else "timeout",
                "status": 200 if ok else None,
                "latency_ms": rng.lognormvariate(6.5, 0.6),
                "ttfb_ms": rng.uniform(50, 900),
                "tokens_in": rng.randint(1000, 60_000),
                "tokens_out": rng.randint(10, 2000),
                "cache": "miss" if backend_type == "runpod" else None,
                "cost_usd": 0.001,
            }
            handle.write(
                orjson.dumps({**attempt, **measured})
                + b"\n"
                + orjson.dumps({**request, **measured})
                + b"\n"
            )


def _probe(directory: Path, now: datetime, read: bool) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(directory), now.isoformat(), "1" if read else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def rows(quick: bool) -> list[Row]:
    count = QUICK_N if quick else FULL_N
    now = datetime.now(UTC).replace(hour=23, minute=0)
    with tempfile.TemporaryDirectory(prefix="ccrelay-bench-stats-") as folder:
        directory = Path(folder)
        started = time.perf_counter()
        _write(directory, count, now)
        written = time.perf_counter() - started
        idle = _probe(directory, now, read=False)
        busy = _probe(directory, now, read=True)
    assert busy["records"] == count, busy
    peak_mb = busy["rss_kb"] / 1024
    added_mb = (busy["rss_kb"] - idle["rss_kb"]) / 1024
    per_record = (busy["rss_kb"] - idle["rss_kb"]) * 1024 / count
    label = f"{count // 1000}k records"
    return [
        Row(
            f"stats peak RSS, {label}",
            peak_mb,
            "MB",
            f"<= {TARGET_MB:.0f}",
            peak_mb <= TARGET_MB,
        ),
        Row(f"stats RSS added by the records, {label}", added_mb, "MB"),
        Row("stats memory per record", per_record, "bytes"),
        Row(f"stats time, {label}", busy["seconds"], "s"),
        Row(f"writing the {label} (setup)", written, "s"),
    ]
