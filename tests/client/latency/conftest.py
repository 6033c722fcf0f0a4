"""Fixtures for the latency tests (the helpers they use live in `helpers.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.client.latency.helpers import MotoEndpoint, StallingEndpoint
from tests.conftest import S3Bucket


@pytest.fixture
async def moto_endpoint(s3_bucket: S3Bucket) -> AsyncIterator[MotoEndpoint]:
    endpoint = MotoEndpoint()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


@pytest.fixture
async def stalling_endpoint() -> AsyncIterator[StallingEndpoint]:
    endpoint = StallingEndpoint()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"
