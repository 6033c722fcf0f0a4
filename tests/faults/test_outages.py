"""Stores going away and coming back: Redis under the handler's `ChatService` (requests are
served uncached, bounded in time, and caching resumes), and S3 under the latency recorder
while the gateway meets faults (every attempt's record lands exactly once after S3 returns)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrelay.gateway import GatewayServer, build_app
from ccrelay.latency import LatencyRecorder
from ccrelay.runtime import Runtime
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import TelemetrySettings
from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings
from tests.client.latency.helpers import (
    MotoEndpoint,
    bucket_objects,
    s3_settings,
    spool_files,
)
from tests.conftest import RedisServer, S3Bucket, eventually
from tests.fakes.providers import Reply, openai_completion, openai_text_chunks, sse
from tests.faults.helpers import (
    REQUEST,
    SECRET,
    FaultServer,
    Sleeps,
    Witness,
    load,
    pre_stream_reply,
)
from tests.handler.helpers import cache_lines, chat


async def _serve(service: ChatService, text: str, *, stream: bool) -> str:
    """One request through the service; the text it answered."""
    if not stream:
        reply = await service.complete(chat(text))
        return str(reply["choices"][0]["message"]["content"])
    pieces = []
    async for chunk in service.stream(chat(text, stream=True)):
        for choice in chunk.get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_redis_down_then_back(
    stream: bool,
    redis_server: RedisServer,
    ollama_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = HandlerSettings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "OLLAMA_HOST": ollama_server.url,
            "CCRELAY_REDIS_BACKOFF": "0.1",
        }
    )
    service = ChatService(settings)
    try:
        assert await _serve(service, "before", stream=stream)
        await _serve(service, "before", stream=stream)
        assert cache_lines(caplog)[-1].count("cache=hit") == 1

        redis_server.stop()
        started = time.monotonic()
        answers = [await _serve(service, f"down {n}", stream=stream) for n in range(3)]
        answers += await asyncio.gather(
            *(_serve(service, f"burst {n}", stream=stream) for n in range(5))
        )
        assert time.monotonic() - started < 3
        assert all(answers)  # served uncached, no exception reached the caller
        assert all("cache=bypass" in line for line in cache_lines(caplog)[-8:])

        redis_server.start()
        await asyncio.sleep(0.15)  # past the back-off window
        await _serve(service, "after", stream=stream)
        await _serve(service, "after", stream=stream)
        lines = cache_lines(caplog)
        assert "cache=miss" in lines[-2] and "cache=hit" in lines[-1]
    finally:
        await service.aclose()
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ccrelay.handler" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1, warnings  # one warning for the outage, not one per request
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_s3_down_then_back_loses_no_attempt_record(
    fault_server: FaultServer,
    moto_endpoint: MotoEndpoint,
    s3_bucket: S3Bucket,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = tmp_path / "spool"
    s3 = s3_settings(
        s3_bucket.name,
        spool,
        moto_endpoint.url,
        batch_max_records=3,
        access_key_id="AKIAFAULTSUITE",
        secret_access_key=SECRET,
    )
    telemetry = TelemetrySettings(jsonl_enabled=False, s3=s3)
    recorder = LatencyRecorder.from_settings(telemetry, PriceTable())
    await moto_endpoint.stop()  # S3 refuses connections from the start
    async with aiohttp.ClientSession() as session:
        runtime = Runtime(
            load("openai", fault_server.url), session, observer=recorder, sleep=Sleeps()
        )
        runtime.recorder = recorder
        await runtime.start()
        server = GatewayServer(build_app(runtime))
        await server.start()
        try:
            statuses = []
            # two 503s then a good reply; a 429 twice; a good stream: 5 + 1 attempts in all
            fault_server.push(pre_stream_reply("503"), pre_stream_reply("503"))
            fault_server.push(pre_stream_reply("429"), pre_stream_reply("429"))
            fault_server.push(Reply(body=openai_completion()))
            fault_server.push(Reply(chunks=sse(openai_text_chunks(["Hi"]), done=True)))
            for body in (REQUEST, REQUEST, REQUEST, {**REQUEST, "stream": True}):
                async with session.post(server.url + "/v1/messages", json=body) as response:
                    await response.read()
                    statuses.append(response.status)
            assert statuses == [503, 429, 200, 200]
            await eventually(lambda: len(spool_files(spool)) >= 1, within=5)
            assert bucket_objects(s3_bucket.client, s3_bucket.name) == {}

            await moto_endpoint.start()
            await eventually(
                lambda: (
                    sum(map(len, bucket_objects(s3_bucket.client, s3_bucket.name).values())) >= 3
                ),
                within=5,
            )
        finally:
            await server.close()
            await runtime.aclose()  # flushes what is left, bounded

    stored = [r for rs in bucket_objects(s3_bucket.client, s3_bucket.name).values() for r in rs]
    requests = Counter((r.outcome, r.attempts, r.streamed) for r in stored if r.kind == "request")
    assert requests == Counter(
        {("overloaded", 2, False): 1, ("rate_limited", 2, False): 1, ("ok", 1, False): 1}
        | {("ok", 1, True): 1}
    )
    outcomes = Counter((r.outcome, r.attempt, r.streamed) for r in stored if r.kind == "attempt")
    assert outcomes == Counter(
        {
            ("overloaded", 1, False): 1,
            ("overloaded", 2, False): 1,
            ("rate_limited", 1, False): 1,
            ("rate_limited", 2, False): 1,
            ("ok", 1, False): 1,
            ("ok", 1, True): 1,
        }
    )
    assert len({r.request_id for r in stored}) == 4  # one id per gateway request
    assert spool_files(spool) == []
    witness = Witness()
    witness.add(*(r.to_json_line() for r in stored))
    witness.assert_clean(caplog)
