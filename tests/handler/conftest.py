"""Fixtures for the handler tests: settings pointing at a real redis-server and the fake Ollama."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings

MakeSettings = Callable[..., HandlerSettings]


@pytest.fixture
def make_settings(redis_server, ollama_server) -> MakeSettings:
    """Settings for the real redis-server and the fake Ollama; keyword args override env vars."""

    def make(**env: str) -> HandlerSettings:
        values = {
            "REDIS_URL": redis_server.url,
            "OLLAMA_HOST": ollama_server.url,
            "CCRELAY_REDIS_BACKOFF": "0.05",
        }
        values.update(env)
        return HandlerSettings.from_env({k: v for k, v in values.items() if v is not None})

    return make


@pytest.fixture
async def service(make_settings: MakeSettings) -> AsyncIterator[ChatService]:
    svc = ChatService(make_settings())
    try:
        yield svc
    finally:
        await svc.aclose()
