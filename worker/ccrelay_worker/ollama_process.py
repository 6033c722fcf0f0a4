"""The `ollama serve` child process: start it, wait until it answers, stop it, watch it.

The command is injectable (tests run a loopback fake Ollama as the child, so the real subprocess
path is exercised). The child is a plain :class:`subprocess.Popen` rather than an asyncio
subprocess because it must outlive the boot's event loop: the runpod SDK runs its own loops
afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ccrelay_handler.tied_child import start_tied_child
from ccrelay_worker.errors import (
    EngineExitedError,
    EngineNotReadyError,
    EngineStartError,
    OllamaAPIError,
)
from ccrelay_worker.ollama_api import OllamaClient

__all__ = ["EngineWatcher", "OllamaProcess", "default_exit"]

log = logging.getLogger("ccrelay.worker.engine")


class OllamaProcess:
    """One child process running the engine on a loopback address."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        host: str,
        port: int,
    ) -> None:
        self.command = tuple(command)
        self.env = dict(env)
        self.host = host
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # a signal handler may re-enter stop() in this thread

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` began: the child's exit is expected, not a crash."""
        return self._stopping.is_set()

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        if _port_answers(self.host, self.port):
            raise EngineStartError(
                f"something already listens on {self.host}:{self.port}, so `ollama serve` cannot "
                "bind there; stop it or point OLLAMA_HOST at a free loopback port"
            )
        log.info(
            "starting engine: %s (listening on %s:%d)", " ".join(self.command), self.host, self.port
        )
        try:
            self.process = start_tied_child(self.command, env=self.env)
        except FileNotFoundError:
            raise EngineStartError(
                f"cannot start the engine: {self.command[0]!r} was not found; install Ollama in "
                "the image or set CCRELAY_OLLAMA_COMMAND"
            ) from None
        except OSError as exc:
            raise EngineStartError(f"cannot start the engine {self.command[0]!r}: {exc}") from exc

    async def wait_ready(
        self,
        client: OllamaClient,
        *,
        within: float,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.1,
    ) -> str:
        """Poll GET /api/version until it answers; fail fast if the child exits first.

        Returns Ollama's version. Raises EngineExitedError or EngineNotReadyError.
        """
        deadline = clock() + within
        delay = interval
        last_error = "no answer yet"
        while True:
            self._raise_if_exited("before answering GET /api/version")
            try:
                version = await client.version(answer_within=min(2.0, max(within, 0.1)))
            except OllamaAPIError as exc:
                last_error = str(exc)
            else:
                self._raise_if_exited("right after answering")
                log.info(
                    "engine ready: Ollama %s on %s", version or "(unknown version)", client.base_url
                )
                return version
            if clock() >= deadline:
                raise EngineNotReadyError(
                    f"`{' '.join(self.command)}` did not answer GET {client.base_url}/api/version "
                    f"within {within:g} s (last error: {last_error}); read the engine's log lines "
                    "above, and raise CCRELAY_OLLAMA_READY_TIMEOUT if it is only slow"
                )
            await asyncio.sleep(min(delay, max(0.0, deadline - clock())))
            delay = min(delay * 2, 1.0)

    def _raise_if_exited(self, when: str) -> None:
        code = self.returncode()
        if self.process is not None and code is not None:
            raise EngineExitedError(
                f"`{' '.join(self.command)}` exited with {_describe_exit(code)} {when}; read the "
                "engine's log lines above (a busy port, a missing GPU driver, an unwritable "
                "OLLAMA_MODELS directory are the usual causes)",
                code,
            )

    async def raise_if_exited_soon(self, when: str, within: float = 2.0) -> None:
        """After a broken connection: if the engine died (it may take a moment to be reaped),
        raise EngineExitedError with its exit status instead of blaming the model or network."""
        deadline = time.monotonic() + within
        while self.process is not None:
            code = self.returncode()
            if code is not None and not self.stopping:
                raise EngineExitedError(
                    f"the engine `{' '.join(self.command)}` exited with {_describe_exit(code)} "
                    f"{when}; read the engine's log lines above (out of GPU or host memory, a "
                    "full or vanished volume are the usual causes), then restart the worker",
                    code,
                )
            if code is not None or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.05)

    def send_signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def stop(self, grace: float = 10.0, signum: int = signal.SIGTERM) -> int | None:
        """Forward ``signum`` to the child, wait ``grace`` seconds, then kill it. Idempotent."""
        self._stopping.set()
        with self._lock:
            process = self.process
            if process is None:
                return None
            if process.poll() is None:
                log.info(
                    "stopping engine (pid %d) with %s", process.pid, signal.Signals(signum).name
                )
                self.send_signal(signum)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log.warning("engine did not exit within %g s; killing it", grace)
                    process.kill()
                    process.wait()
            return process.returncode


class EngineWatcher:
    """A daemon thread that waits for the child and calls ``on_crash`` if it dies unexpectedly.

    While serving, a dead Ollama makes the worker useless; exiting non-zero lets the platform
    replace it instead of leaving a worker that fails every job.
    """

    def __init__(self, engine: OllamaProcess, on_crash: Callable[[int], None]) -> None:
        self._engine = engine
        self._on_crash = on_crash
        self._thread = threading.Thread(target=self._run, name="ollama-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        process = self._engine.process
        if process is None:
            return
        code = process.wait()
        if self._engine.stopping:
            return
        log.error(
            "engine exited with %s while serving; exiting so the platform replaces this worker",
            _describe_exit(code),
        )
        self._on_crash(code)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def default_exit(code: int) -> None:
    """Leave now, whatever threads are running (the runpod SDK keeps non-daemon ones)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
