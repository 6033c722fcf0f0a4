"""No REDIS_URL: an embedded redis-server, its db file in the state directory."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ccrelay_handler.service import ChatService
from ccrelay_handler.settings import HandlerSettings
from tests.conftest import process_alive, wait_until

from .helpers import cache_lines, chat


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
    assert not process_alive(pid)  # stopped with the service, not left behind
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


@contextlib.contextmanager
def own_temp_dir() -> Iterator[Path]:
    """A temporary directory of this test's own, short enough for a unix socket path (108
    bytes: pytest's tmp_path can come close), made the process's temp dir meanwhile, and
    removed after: the test looks only at what it made, never at the machine's /tmp."""
    made = Path(tempfile.mkdtemp(prefix="ccr-"))
    saved = tempfile.tempdir
    tempfile.tempdir = str(made)
    try:
        yield made
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(made, ignore_errors=True)


def test_a_failed_start_leaves_nothing_behind(tmp_path: Path) -> None:
    import pytest

    from ccrelay_handler._embedded import EmbeddedRedis

    for binary in ("/bin/false", str(tmp_path / "no-such-redis-server")):
        embedded = EmbeddedRedis(tmp_path / "db" / "x.db", binary=binary, temp_root=str(tmp_path))
        with pytest.raises(OSError):
            embedded.start(timeout_s=5)
        assert embedded._process is None
        assert not list(tmp_path.glob("ccrelay-redis-*"))  # the socket directory is gone


async def test_a_slow_embedded_start_is_under_the_store_s_bound(tmp_path: Path) -> None:
    """A redis-server that never answers: each request waits at most the store's bound,
    is served uncached, and closing the store stops the start at once."""
    import time

    import pytest

    from ccrelay_handler.errors import CacheUnavailable
    from ccrelay_handler.store import RedisStore

    hang = tmp_path / "hanging-redis-server"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    settings = HandlerSettings.from_env(
        {"CCRELAY_STATE_DIR": str(tmp_path / "state"), "CCRELAY_REDIS_SERVER": str(hang)}
    )
    with own_temp_dir() as temp:
        store = RedisStore(settings)
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await store.get("some-key")
        assert time.monotonic() - started < store._bound_s + 0.5
        closing = time.monotonic()
        await store.aclose()
        assert time.monotonic() - closing < 2.0
        assert not list(temp.glob("ccrelay-redis-*"))  # its socket directory is gone


def test_a_killed_worker_takes_its_embedded_redis_with_it(tmp_path: Path) -> None:
    """SIGKILL (or an os._exit) runs no cleanup; the kernel's parent-death signal stops the
    child. It is started from a thread that then ends, as the service does (a thread of
    asyncio's executor), and must outlive that thread."""
    import subprocess
    import sys
    import time

    script = (
        "import sys, threading, time; from pathlib import Path; "
        "from ccrelay_handler._embedded import EmbeddedRedis; "
        "redis = EmbeddedRedis(Path(sys.argv[1]), temp_root=sys.argv[2]); "
        "starter = threading.Thread(target=redis.start); starter.start(); starter.join(); "
        "print(redis._process.pid, flush=True); time.sleep(60)"
    )
    temp = Path(tempfile.mkdtemp(prefix="ccr-"))  # a SIGKILLed worker cleans nothing up
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "db" / "cache.rdb"), str(temp)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        pid = int(process.stdout.readline())
        time.sleep(0.5)
        assert process_alive(pid), "the redis-server died with the thread that started it"
        process.kill()
        process.wait(timeout=10)
        assert wait_until(lambda: not process_alive(pid), 10), (
            "redis-server orphaned by a killed worker"
        )
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(temp, ignore_errors=True)
