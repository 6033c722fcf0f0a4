"""Latency records from real traffic: a gateway built by `Runtime.from_environ`, as `ccrelay serve`
builds it, in front of fake providers, with telemetry going to the local JSONL day file and to
moto's S3 behind a loopback endpoint. Then `ccrelay stats` reads them back.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrelay.cli import main
from ccrelay.gateway import GatewayServer, build_app
from ccrelay.latency import LatencyRecord
from ccrelay.latency._layout import jsonl_name
from ccrelay.runtime import Runtime
from ccrelay_config.pricing import PriceTable
from tests.client.latency.helpers import (
    MotoEndpoint,
    StallingEndpoint,
    bucket_objects,
    spool_files,
)
from tests.conftest import S3Bucket
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply, anthropic_message
from tests.fakes.providers import openai_completion as completion

SECRET = "sk-upstream-SECRET-5b1e77c0aa"
PROMPT = "CANARY-PROMPT-8c2d: explain the flux capacitor"
CEREBRAS_MODEL = "gpt-oss-120b"
CLAUDE_MODEL = "claude-sonnet-4-5"
OVERLOADED = Reply(status=503, body={"error": {"message": "overloaded"}})


def environment(
    state_dir: Path,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    s3: dict[str, Any] | None,
) -> dict[str, str]:
    document: dict[str, Any] = {
        "active": "cerebras",
        "fallback": ["cerebras", "claude"],
        "backends": {
            "cerebras": {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": fake_openai.base_url,
                "api_key": "${TEST_CEREBRAS_KEY}",
                "retry": {"max_attempts": 2, "initial_backoff_s": 0.01, "max_backoff_s": 0.01},
                "circuit": {"failure_threshold": 100},
            },
            "claude": {
                "type": "anthropic",
                "base_url": fake_anthropic.url,
                "api_key": "${TEST_CEREBRAS_KEY}",
                "retry": {"max_attempts": 1},
            },
        },
    }
    if s3 is not None:
        document["telemetry"] = {"s3": s3}
    return {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(document),
        "TEST_CEREBRAS_KEY": SECRET,
        "CCRELAY_STATE_DIR": str(state_dir),
    }


def s3_config(bucket: str, endpoint_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "team/latency",
        "region": "us-east-1",
        "endpoint_url": endpoint_url,
        "batch_max_records": 100,
        "batch_max_age_s": 30,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "connect_timeout_s": 1,
        "read_timeout_s": 2,
        **overrides,
    }


@asynccontextmanager
async def gateway_from_environ(env: dict[str, str]) -> AsyncIterator[tuple[str, Runtime]]:
    """`ccrelay serve`'s wiring: Runtime.from_environ (the recorder as observer), then the app."""
    runtime = Runtime.from_environ(env)
    try:
        await runtime.start()
        assert runtime.recorder is not None
        server = await GatewayServer(build_app(runtime)).start()
        try:
            yield server.url, runtime
        finally:
            await server.close()
    finally:
        await runtime.aclose()


async def ask(client: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """POST one request; (request-id, serving backend)."""
    body = {
        "model": CLAUDE_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    async with client.post(url + "/v1/messages", json=body) as response:
        assert response.status == 200, await response.text()
        await response.read()
        return response.headers["request-id"], response.headers["x-ccrelay-backend"]


def key(record: LatencyRecord) -> tuple[str, str, int]:
    return record.request_id, record.backend, record.attempt


async def run_cli(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str) -> int:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return await asyncio.to_thread(main, list(argv))


async def test_one_record_per_attempt_in_jsonl_and_s3_then_stats(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    s3_bucket: S3Bucket,
    moto_endpoint: MotoEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_dir = tmp_path / "gateway-state"
    env = environment(
        state_dir, fake_openai, fake_anthropic, s3_config(s3_bucket.name, moto_endpoint.url)
    )
    ok = Reply(body=completion(model=CEREBRAS_MODEL, usage=(100_000, 20_000)))
    claude = Reply(body=anthropic_message(model=CLAUDE_MODEL, usage=(50_000, 10_000)))
    async with gateway_from_environ(env) as (url, _runtime), aiohttp.ClientSession() as client:
        fake_openai.push(ok)
        first = await ask(client, url)  # served at once
        fake_openai.push(OVERLOADED, ok)
        retried = await ask(client, url)  # a 503, then served by the retry
        fake_openai.push(OVERLOADED, OVERLOADED)
        fake_anthropic.push(claude)
        failover = await ask(client, url)  # two 503s, then the fallback
    assert [first[1], retried[1], failover[1]] == ["cerebras", "cerebras", "claude"]
    served_at = datetime.now(UTC)

    # The local day file: one record per attempt (six) and one per request (three).
    day_file = state_dir / jsonl_name(served_at.date())
    text = day_file.read_text()
    assert PROMPT not in text
    assert SECRET not in text
    for line in text.splitlines():  # one timestamp format, whatever the microseconds
        assert re.search(r'"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"', line), line
    records = [LatencyRecord.from_json_line(line) for line in text.splitlines()]
    attempts = [r for r in records if r.kind == "attempt"]
    requests = {r.request_id: r for r in records if r.kind == "request"}
    prices = PriceTable()
    seen = {
        key(r): (r.backend_type, r.model, r.outcome, r.status, r.tokens_in, r.tokens_out)
        for r in attempts
    }
    assert len(attempts) == len(seen) == 6 and len(requests) == 3
    assert seen == {
        (first[0], "cerebras", 1): ("cerebras", CEREBRAS_MODEL, "ok", 200, 100_000, 20_000),
        (retried[0], "cerebras", 1): ("cerebras", CEREBRAS_MODEL, "overloaded", 503, 0, 0),
        (retried[0], "cerebras", 2): ("cerebras", CEREBRAS_MODEL, "ok", 200, 100_000, 20_000),
        (failover[0], "cerebras", 1): ("cerebras", CEREBRAS_MODEL, "overloaded", 503, 0, 0),
        (failover[0], "cerebras", 2): ("cerebras", CEREBRAS_MODEL, "overloaded", 503, 0, 0),
        (failover[0], "claude", 1): ("anthropic", CLAUDE_MODEL, "ok", 200, 50_000, 10_000),
    }
    for record in attempts:
        assert record.cost_usd == pytest.approx(
            prices.cost(record.model, record.tokens_in, record.tokens_out)
        )
        assert not record.streamed and record.baseline_usd is None
    served_costs = [r.cost_usd for r in attempts if r.ok and r.backend == "cerebras"]
    assert served_costs == pytest.approx([0.05, 0.05])  # 100k in at $0.35 + 20k out at $0.75 / Mtok

    # The request records: what the client got, across retries and failover.
    levels = {
        rid: (r.backend, r.outcome, r.attempts, r.failovers, r.requested_model, r.route)
        for rid, r in requests.items()
    }
    assert levels == {
        first[0]: ("cerebras", "ok", 1, 0, CLAUDE_MODEL, "default"),
        retried[0]: ("cerebras", "ok", 2, 0, CLAUDE_MODEL, "default"),
        failover[0]: ("claude", "ok", 3, 1, CLAUDE_MODEL, "default"),
    }
    assert requests[first[0]].backoff_ms == 0
    assert requests[retried[0]].backoff_ms > 0 and requests[failover[0]].backoff_ms > 0
    assert requests[failover[0]].latency_ms >= max(
        r.latency_ms for r in attempts if r.request_id == failover[0]
    )
    # Cost: what the attempts cost. Baseline: Sonnet 4.5 ($3 in, $15 out) with prompt caching:
    # the first request writes its 100k-token prompt to the cache (1.25x), the next one of the
    # same conversation reads it (0.1x); the Anthropic-served one is its own bill.
    costs = {rid: (r.cost_usd, r.baseline_usd) for rid, r in requests.items()}
    assert costs[first[0]] == pytest.approx((0.05, 0.375 + 0.30))
    assert costs[retried[0]] == pytest.approx((0.05, 0.03 + 0.30))
    assert costs[failover[0]] == pytest.approx((0.30, 0.30))

    # S3 holds the same records, each exactly once.
    objects = bucket_objects(s3_bucket.client, s3_bucket.name, "team/latency/")
    uploaded = [record for batch in objects.values() for record in batch]
    assert sorted(uploaded, key=full_key) == sorted(records, key=full_key)
    for name in objects:
        body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=name)["Body"].read()
        assert SECRET.encode() not in body

    # `ccrelay stats` reads them back, from the local files and from S3, at both levels.
    for source in ("local", "s3"):
        code = await run_cli(
            monkeypatch, env, "stats", "--since", "1h", "--json", "--source", source
        )
        out, err = capsys.readouterr()
        assert code == 0, err
        report = json.loads(out)
        rows = {(row["backend"], row["model"]): row for row in report["rows"]}
        assert set(rows) == {("cerebras", CEREBRAS_MODEL), ("claude", CLAUDE_MODEL)}
        cerebras, anthropic = rows["cerebras", CEREBRAS_MODEL], rows["claude", CLAUDE_MODEL]
        assert (cerebras["calls"], cerebras["errors"]) == (5, 3)
        assert cerebras["error_rate"] == pytest.approx(0.6)  # attempts fail...
        assert report["requests_total"]["error_rate"] == 0  # ...yet every request was served
        assert (report["requests_total"]["requests"], report["requests_total"]["attempts"]) == (
            3,
            6,
        )
        assert report["requests_total"]["failovers"] == 1
        assert (cerebras["tokens_in"], cerebras["tokens_out"]) == (200_000, 40_000)
        assert cerebras["cost_usd"] == pytest.approx(0.10)
        assert (anthropic["calls"], anthropic["errors"], anthropic["error_rate"]) == (1, 0, 0)
        assert anthropic["cost_usd"] == pytest.approx(0.15 + 0.15)
        by_backend = {row["backend"]: row for row in report["requests"]}
        assert by_backend["cerebras"]["saving_usd"] == pytest.approx(0.675 + 0.33 - 0.10)
        assert by_backend["claude"]["saving_usd"] == pytest.approx(0.0)  # it was Anthropic
        assert report["savings"]["saving_usd"] == pytest.approx(0.905)
        assert report["savings"]["requested_models"] == {CLAUDE_MODEL: 3}
        assert report["total"]["calls"] == 6
        assert SECRET not in out + err


def full_key(record: LatencyRecord) -> tuple[str, str, str, int]:
    return record.kind, record.request_id, record.backend, record.attempt or 0


async def mean_latency(
    env: dict[str, str],
    count: int,
    fake_openai: FakeOpenAI,
    s3: StallingEndpoint | None = None,
) -> tuple[float, float]:
    """(mean, max) seconds of `count` requests through a gateway built from `env`. With `s3`,
    the requests are timed while an upload to it hangs; it is released before the close."""
    timings = []
    async with gateway_from_environ(env) as (url, _), aiohttp.ClientSession() as client:
        await ask(client, url)  # warm the connections; its record starts an upload
        if s3 is not None:
            await asyncio.wait_for(s3.received.wait(), 10)
        for _ in range(count):
            started = time.perf_counter()
            assert (await ask(client, url))[1] == "cerebras"
            timings.append(time.perf_counter() - started)
        if s3 is not None:
            assert not s3.release.is_set()  # the upload hung all along
            s3.release.set()  # now a 503: the records stay spooled
    assert fake_openai.requests
    return statistics.mean(timings), max(timings)


async def test_a_stalled_s3_adds_nothing_noticeable_to_requests(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    s3_bucket: S3Bucket,  # for its fake AWS credentials
    stalling_endpoint: StallingEndpoint,
) -> None:
    plain = environment(tmp_path / "plain", fake_openai, fake_anthropic, None)
    baseline, _ = await mean_latency(plain, 10, fake_openai)

    stalled_s3 = s3_config(
        "ccrelay-stalled", stalling_endpoint.url, batch_max_records=1, read_timeout_s=30
    )
    stalled = environment(tmp_path / "stalled", fake_openai, fake_anthropic, stalled_s3)
    started = time.perf_counter()
    mean, worst = await mean_latency(stalled, 10, fake_openai, stalling_endpoint)
    assert time.perf_counter() - started < 15  # closing is bounded too
    assert mean < baseline + 0.1, (mean, baseline)
    assert worst < 1.0
    # Nothing is lost: the records are in the day file, and spooled for S3.
    day_file = tmp_path / "stalled" / jsonl_name(datetime.now(UTC).date())
    assert len(day_file.read_text().splitlines()) == 2 * 11  # an attempt and a request each
    assert spool_files(tmp_path / "stalled" / "s3-spool")
