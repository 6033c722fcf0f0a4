"""Fixtures for the latency tests (the helpers they use live in `helpers.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.client.latency.helpers import RefusingPort, StallingEndpoint


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 where connections are refused."""
    port = RefusingPort()
    try:
        yield port.url
    finally:
        port.close()


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
