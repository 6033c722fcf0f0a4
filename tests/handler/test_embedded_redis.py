"""No REDIS_URL: an embedded redis-server, its db file in the state directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings

from .helpers import cache_lines, chat


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(")")[-1].split()[0] != "Z"


async def test_embedded_redis_caches_and_persists(ollama_server, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    settings = HandlerSettings.from_env(
        {"OLLAMA_HOST": ollama_server.url, "CCRELAY_STATE_DIR": str(tmp_path / "state")}
    )
    service = ChatService(settings)
    try:
        await service.complete(chat("embedded"))
        await service.complete(chat("embedded"))
        embedded = service.store._embedded
        assert embedded is not None and embedded._process is not None
        pid = embedded._process.pid
    finally:
        await service.aclose()
    assert not _alive(pid)  # stopped with the service, not left behind
    assert settings.embedded_redis_path.is_file()  # the RDB saved in the state dir
    assert settings.embedded_redis_path.parent.parent == tmp_path / "state"

    restarted = ChatService(settings)  # a new process on the same state dir finds the entry
    try:
        await restarted.complete(chat("embedded"))
    finally:
        await restarted.aclose()
    assert len(ollama_server.chat_requests) == 1
    verdicts = [line.split()[1] for line in cache_lines(caplog)]
    assert verdicts == ["cache=miss", "cache=hit", "cache=hit"]
