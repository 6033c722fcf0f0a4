"""Fixtures of the fault-injection suite (the helpers live in `helpers.py`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.client.latency.helpers import MotoEndpoint
from tests.conftest import S3Bucket
from tests.faults.helpers import FaultServer


@pytest.fixture(autouse=True)
def everything_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every ccrelay log line at DEBUG, to search for the key."""
    logger = logging.getLogger("ccrelay")
    handlers, level = logger.handlers[:], logger.level
    caplog.set_level(logging.DEBUG)
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    server = FaultServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def moto_endpoint(s3_bucket: S3Bucket) -> AsyncIterator[MotoEndpoint]:
    """moto's S3 behind a loopback HTTP server that can refuse connections and come back."""
    endpoint = MotoEndpoint()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()
        endpoint.close()
