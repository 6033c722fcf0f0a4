"""One puller per models directory, however many workers start from zero at once.

Two layers, both next to the models on the volume:

* ``.ccrelay-pull.lock``: an ``fcntl.flock`` lock. The kernel drops it when its holder dies, so
  it never goes stale; it excludes processes on one host, and hosts too where the network
  filesystem propagates flock.
* ``.ccrelay-pull.lease``: a file that names its holder (host, pid, start, a random token) and
  whose mtime the holder refreshes every few seconds. It excludes workers on other hosts when
  flock does not cross hosts. It is created whole: written to a private temp file, then
  ``link()``-ed into place, which fails if a lease exists. So no one ever sees it empty or
  half-written. A lease not refreshed for ``stale_after`` seconds (its holder crashed or lost
  the volume), or held by a dead pid on this host, is broken: renamed away atomically, then
  checked to be the very lease judged stale (same token), else put back.

A worker that had to wait must re-check whether the model is there once it holds the lock:
the holder most likely pulled it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ccrelay_worker.errors import ModelStoreNotWritable, PullLockTimeout

__all__ = ["LEASE_NAME", "LOCK_NAME", "PullLock"]

log = logging.getLogger("ccrelay.worker.pull_lock")

LOCK_NAME = ".ccrelay-pull.lock"
LEASE_NAME = ".ccrelay-pull.lease"
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


class PullLock:
    """An async context manager holding the right to pull into ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        timeout: float,
        stale_after: float = 120.0,
        poll_interval: float = 0.5,
        wait_log_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.directory = directory
        self.timeout = timeout
        self.stale_after = stale_after
        self.poll_interval = poll_interval
        self.wait_log_interval = wait_log_interval
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._fd: int | None = None
        self._token = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_wait_log = float("-inf")
        self.waited = False
        self.held = False

    @property
    def lock_path(self) -> Path:
        return self.directory / LOCK_NAME

    @property
    def lease_path(self) -> Path:
        return self.directory / LEASE_NAME

    async def __aenter__(self) -> PullLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    async def acquire(self) -> None:
        """Take the lock; ModelStoreNotWritable when the directory refuses the lock files."""
        started = self._clock()
        deadline = started + self.timeout
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ModelStoreNotWritable(str(self.directory), _reason(exc)) from None
        try:
            await self._acquire_flock(fd, started, deadline)
            await self._acquire_lease(started, deadline)
        except PullLockTimeout:  # a TimeoutError, hence an OSError: not the filesystem's fault
            _unlock_and_close(fd)
            raise
        except OSError as exc:
            _unlock_and_close(fd)
            raise ModelStoreNotWritable(str(self.directory), _reason(exc)) from None
        except BaseException:
            _unlock_and_close(fd)
            raise
        self._fd = fd
        self.held = True
        self._heartbeat = asyncio.create_task(self._refresh_lease(), name="pull-lease-heartbeat")
        log.info("holding the pull lock on %s", self.directory)

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        holder = _read_lease(self.lease_path)
        if holder is not None and holder.get("token") == self._token:
            with contextlib.suppress(FileNotFoundError):
                self.lease_path.unlink()
        if self._fd is not None:
            _unlock_and_close(self._fd)
            self._fd = None
        log.info("released the pull lock on %s", self.directory)

    async def _acquire_flock(self, fd: int, started: float, deadline: float) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno in _UNSUPPORTED:
                    log.warning(
                        "the filesystem of %s does not support flock; relying on the lease file only",
                        self.directory,
                    )
                    return
                raise
            await self._wait(started, deadline)

    async def _acquire_lease(self, started: float, deadline: float) -> None:
        while True:
            if self._create_lease():
                return
            holder = _read_lease(self.lease_path)
            if self._is_stale(holder):
                self._break_lease(holder)
                continue
            await self._wait(started, deadline, holder)

    async def _wait(
        self, started: float, deadline: float, holder: dict[str, Any] | None = None
    ) -> None:
        self.waited = True
        now = self._clock()
        if holder is None:
            holder = _read_lease(self.lease_path)
        if now >= deadline:
            raise PullLockTimeout(
                f"another worker ({_describe(holder)}) held the pull lock on {self.directory} for "
                f"more than {self.timeout:g} s; if no worker is pulling, delete {self.lease_path} "
                "or raise CCRELAY_PULL_LOCK_TIMEOUT"
            )
        if now - self._last_wait_log >= self.wait_log_interval:
            self._last_wait_log = now
            log.info(
                "another worker (%s) is pulling into %s; waiting (%.0f s so far, up to %g s)",
                _describe(holder),
                self.directory,
                now - started,
                self.timeout,
            )
        await self._sleep(min(self.poll_interval, max(0.0, deadline - now)))

    def _create_lease(self) -> bool:
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self._wall(),
            "token": self._token,
        }
        temp = self.directory / f"{LEASE_NAME}.{self._token}.tmp"
        try:
            temp.write_text(json.dumps(record))
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()  # a full disk leaves an empty file behind
            raise
        try:
            os.link(temp, self.lease_path)  # atomic, and fails when a lease exists
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return True

    def _is_stale(self, holder: dict[str, Any] | None) -> bool:
        try:
            mtime = self.lease_path.stat().st_mtime
        except FileNotFoundError:
            return False  # gone already: the next create attempt wins or loses fairly
        if self._wall() - mtime > self.stale_after:
            return True
        if holder and holder.get("host") == socket.gethostname():
            pid = holder.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return True
        return False

    def _break_lease(self, holder: dict[str, Any] | None) -> None:
        """Remove the lease judged stale, and only that one: between the judgement and now
        another worker may have broken it and written its own."""
        tomb = self.directory / f"{LEASE_NAME}.{self._token}.broken"
        try:
            os.rename(self.lease_path, tomb)  # atomic: what we took is what we now check
        except FileNotFoundError:
            return  # someone else broke it; the next create attempt wins or loses fairly
        taken = _read_lease(tomb)  # None: unreadable, which a whole-written lease never is
        judged = taken is None or (holder is not None and taken.get("token") == holder.get("token"))
        if not judged:
            # a fresh lease took its place meanwhile: put it back untouched
            with contextlib.suppress(FileExistsError):
                os.link(tomb, self.lease_path)
            with contextlib.suppress(FileNotFoundError):
                tomb.unlink()
            return
        log.warning("breaking a stale pull lease on %s (%s)", self.directory, _describe(holder))
        with contextlib.suppress(FileNotFoundError):
            tomb.unlink()

    async def _refresh_lease(self) -> None:
        interval = max(0.05, self.stale_after / 4)
        while True:
            await asyncio.sleep(interval)  # real time: other hosts judge the lease by its mtime
            with contextlib.suppress(OSError):
                os.utime(self.lease_path)


def _reason(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "refused")


def _read_lease(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "unknown holder"
    return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlock_and_close(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)
