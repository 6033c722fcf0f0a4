"""The volume's pull lock: flock between handles, the lease file across hosts, stale leases."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from ccrelay_worker.errors import PullLockTimeout
from ccrelay_worker.pull_lock import LEASE_NAME, PullLock


def write_lease(directory: Path, *, host: str, pid: int, age: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lease = directory / LEASE_NAME
    lease.write_text(
        json.dumps({"host": host, "pid": pid, "since": time.time() - age, "token": "other"})
    )
    os.utime(lease, (time.time() - age, time.time() - age))
    return lease


async def test_a_second_handle_waits_until_the_first_releases(tmp_path: Path) -> None:
    first = PullLock(tmp_path, timeout=5, poll_interval=0.01)
    second = PullLock(tmp_path, timeout=5, poll_interval=0.01)
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.1)
    assert not waiting.done(), "the second handle must wait"
    await first.release()
    await asyncio.wait_for(waiting, 5)
    assert second.held and second.waited and not first.waited
    await second.release()
    assert not (tmp_path / LEASE_NAME).exists()


async def test_a_fresh_lease_of_another_host_blocks_until_the_deadline(tmp_path: Path) -> None:
    write_lease(tmp_path, host="worker-elsewhere", pid=4242)
    lock = PullLock(tmp_path, timeout=0.3, poll_interval=0.05)
    with pytest.raises(PullLockTimeout) as caught:
        await lock.acquire()
    message = str(caught.value)
    assert "host worker-elsewhere, pid 4242" in message
    assert "CCRELAY_PULL_LOCK_TIMEOUT" in message
    # the flock was given back: another handle can take it at once (after the lease goes)
    (tmp_path / LEASE_NAME).unlink()
    async with PullLock(tmp_path, timeout=1) as again:
        assert again.held


async def test_a_lease_not_refreshed_for_stale_after_is_broken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_lease(tmp_path, host="worker-that-died", pid=4242, age=600)
    with caplog.at_level(logging.WARNING, logger="ccrelay.worker.pull_lock"):
        async with PullLock(tmp_path, timeout=2, stale_after=120) as lock:
            assert lock.held
            holder = json.loads((tmp_path / LEASE_NAME).read_text())
            assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert "breaking a stale pull lease" in caplog.text


async def test_a_lease_of_a_dead_process_on_this_host_is_broken_at_once(tmp_path: Path) -> None:
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    write_lease(tmp_path, host=socket.gethostname(), pid=dead.pid)
    started = time.monotonic()
    async with PullLock(tmp_path, timeout=5, stale_after=120) as lock:
        assert lock.held
    assert time.monotonic() - started < 2


async def test_the_holder_keeps_its_lease_fresh(tmp_path: Path) -> None:
    async with PullLock(tmp_path, timeout=2, stale_after=0.2):
        os.utime(tmp_path / LEASE_NAME, (time.time() - 100, time.time() - 100))
        await asyncio.sleep(0.2)
        age = time.time() - (tmp_path / LEASE_NAME).stat().st_mtime
    assert age < 1.0, "the heartbeat refreshes the lease's mtime"
