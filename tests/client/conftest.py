"""Shared parts of the client tests: the aiohttp session, a recording `sleep`, a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.providers import FakeOpenAI

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
"""A minimal Anthropic Messages request (treat it as read-only)."""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


class Sleeps:
    """An injected `sleep` that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Clock:
    """An injected monotonic clock that a test moves by setting `now`."""

    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def secondary() -> AsyncIterator[FakeOpenAI]:
    """A second fake OpenAI server: the fallback backend of failover tests."""
    server = await FakeOpenAI().start()
    try:
        yield server
    finally:
        await server.close()
