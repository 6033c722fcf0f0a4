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


# -- the race between breaking a stale lease and a fresh one taking its place (issue 13) --------


def test_a_lease_is_never_seen_empty_or_half_written(tmp_path: Path) -> None:
    """Created whole: a temp file linked into place, and no temp file left behind."""
    lock = PullLock(tmp_path, timeout=1)
    assert lock._create_lease()
    holder = json.loads((tmp_path / LEASE_NAME).read_text())
    assert holder["token"] == lock._token and holder["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE_NAME]
    assert not PullLock(tmp_path, timeout=1)._create_lease()  # taken: the second create fails


def test_breaking_a_stale_lease_never_removes_the_fresh_one_that_replaced_it(
    tmp_path: Path,
) -> None:
    """Two workers judge the same lease stale; the first breaks it and takes the lease; then
    the second, acting on its old judgement, must leave the first worker's lease alone."""
    write_lease(tmp_path, host="worker-that-died", pid=4242, age=600)
    first = PullLock(tmp_path, timeout=1, stale_after=120)
    second = PullLock(tmp_path, timeout=1, stale_after=120)
    seen_by_second = json.loads((tmp_path / LEASE_NAME).read_text())
    assert second._is_stale(seen_by_second)  # step 1: the second worker judges it stale
    seen_by_first = json.loads((tmp_path / LEASE_NAME).read_text())
    assert first._is_stale(seen_by_first)
    first._break_lease(seen_by_first)  # step 2: the first breaks it...
    assert first._create_lease()  # ...and takes the lease
    second._break_lease(seen_by_second)  # step 3: the second acts on its stale judgement
    holder = json.loads((tmp_path / LEASE_NAME).read_text())
    assert holder["token"] == first._token  # the first worker's lease survived
    assert not second._create_lease()  # so the second cannot take it: one puller
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE_NAME]


def test_breaking_a_lease_that_is_already_gone_is_harmless(tmp_path: Path) -> None:
    lock = PullLock(tmp_path, timeout=1)
    lock._break_lease({"token": "gone"})
    assert lock._create_lease()


def test_an_unreadable_stale_lease_is_broken(tmp_path: Path) -> None:
    lease = tmp_path / LEASE_NAME
    lease.write_text("{ not json")  # what an older version could leave mid-write
    os.utime(lease, (time.time() - 600, time.time() - 600))
    lock = PullLock(tmp_path, timeout=1, stale_after=120)
    assert lock._is_stale(None)
    lock._break_lease(None)
    assert lock._create_lease()
