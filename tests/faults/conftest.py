"""Fixtures of the fault-injection suite (the helpers live in `helpers.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.helpers import FaultServer


@pytest.fixture(autouse=True)
def everything_at_debug(ccrelay_debug_logs: None) -> None:
    """Every fault test searches the DEBUG log lines for the key."""


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    server = FaultServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
