"""Helpers for the latency tests: loopback S3 endpoints, records, bucket contents.

`moto_endpoint` is a real HTTP server on 127.0.0.1 that hands each request to moto's S3 (the one
`s3_bucket` activates), so boto3 talks real HTTP to it and a test can stop it (connections are
refused), start it again on the same port, or make it store an object and then answer 500 (an
ambiguous failure). `stalling_endpoint` accepts requests and never answers.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders

from ccrelay.latency import LatencyRecord
from ccrelay_config.telemetry import S3SinkSettings
from tests.conftest import free_port

_HOP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


class RefusingPort:
    """A loopback port bound but not listening: connections are refused, and no other process
    (another test run in parallel) can start listening on it meanwhile."""

    def __init__(self, port: int = 0) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._socket.close()


class MotoEndpoint:
    """moto's S3 behind a real loopback HTTP server that can go down (refusing) and come back."""

    def __init__(self) -> None:
        self._down: RefusingPort | None = RefusingPort()
        self.port = self._down.port
        self.url = self._down.url
        self.store_then_fail = 0  # PUTs to store and then answer 500 for
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self._down is not None:
            self._down.close()
            self._down = None
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._down is None:
            self._down = RefusingPort(self.port)

    def close(self) -> None:
        if self._down is not None:
            self._down.close()
            self._down = None

    async def _handle(self, request: web.Request) -> web.Response:
        from moto.core.models import botocore_stubber

        body = await request.read()
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name] = "s3.amazonaws.com" if name.lower() == "host" else value
        prepared = AWSPreparedRequest(
            request.method,
            "https://s3.amazonaws.com" + request.raw_path,
            headers,
            body,
            stream_output=False,
        )
        answer = botocore_stubber.process_request(prepared)
        assert answer is not None, f"moto does not handle {request.method} {request.raw_path}"
        status, answer_headers, answer_body = answer
        if request.method == "PUT" and self.store_then_fail > 0:
            self.store_then_fail -= 1
            return web.Response(
                status=500,
                content_type="application/xml",
                text="<Error><Code>InternalError</Code><Message>lost</Message></Error>",
            )
        data = answer_body.encode() if isinstance(answer_body, str) else answer_body or b""
        kept = {k: str(v) for k, v in answer_headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=status, headers=kept, body=data)


class StallingEndpoint:
    """Accepts every request and holds it until released: an S3 that has stopped answering."""

    def __init__(self) -> None:
        self.received = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received.set()
        await self.release.wait()
        return web.Response(status=503)

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def s3_settings(
    bucket: str, spool_dir: Path, endpoint_url: str | None = None, **overrides: Any
) -> S3SinkSettings:
    """Settings that retry quickly, so tests never wait long."""
    values: dict[str, Any] = {
        "bucket": bucket,
        "prefix": "team/latency",
        "region": "us-east-1",
        "endpoint_url": endpoint_url,
        "spool_dir": spool_dir,
        "batch_max_records": 10,
        "batch_max_age_s": 30,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "connect_timeout_s": 1,
        "read_timeout_s": 2,
    }
    values.update(overrides)
    return S3SinkSettings(**values)


def make_record(n: int, timestamp: datetime | None = None, **overrides: Any) -> LatencyRecord:
    values: dict[str, Any] = {
        "timestamp": timestamp or datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        "request_id": f"req-{n:05d}",
        "backend": "cerebras",
        "backend_type": "cerebras",
        "model": "qwen-3-coder-480b",
        "outcome": "ok",
        "status": 200,
        "attempt": 1,
        "latency_ms": 100.0 + n,
        "tokens_in": 1000,
        "tokens_out": 200,
        "cost_usd": 0.0024,
    }
    values.update(overrides)
    return LatencyRecord(**values)


def spread_records(count: int, start: datetime, span: timedelta, seed: int) -> list[LatencyRecord]:
    """``count`` records at random instants in ``[start, start + span)``, ids in order."""
    rng = random.Random(seed)
    seconds = span.total_seconds()
    return [
        make_record(n, start + timedelta(seconds=rng.uniform(0, seconds))) for n in range(count)
    ]


def bucket_objects(client: Any, bucket: str, prefix: str = "") -> dict[str, list[LatencyRecord]]:
    """Every object under ``prefix``: key -> the records of its gzip JSONL body."""
    found: dict[str, list[LatencyRecord]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            data = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            lines = gzip.decompress(data).decode().splitlines()
            found[item["Key"]] = [LatencyRecord.from_json_line(line) for line in lines]
    return found


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl.gz")) if directory.is_dir() else []


def names_in(directory: Path, pattern: str = "*") -> list[str]:
    return sorted(path.name for path in directory.glob(pattern)) if directory.is_dir() else []
