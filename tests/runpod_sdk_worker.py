"""The ccrelay worker as RunPod runs it: ``python -m ccrelay_handler`` under the runpod SDK's job loop.

`SDKWorker` starts the handler as a subprocess with the environment RunPod gives a worker
(`FakeRunPod.worker_env`: the job-take, output, stream and ping URLs, its key, its id), so the
SDK's own loop (runpod/serverless/worker.py ``run_worker``: fitness checks, the heartbeat
process, ``rp_scale.JobScaler``) takes the fake's jobs and posts what the handler yields. The
engine and the cache are the caller's: ``OLLAMA_HOST`` and ``REDIS_URL`` in `engine_env`.

It gets a HOME of its own (the SDK would read a key from ``~/.runpod/config.toml`` there) and
nothing of the machine's ccrelay, RunPod or Ollama settings. `stop` ends it with SIGTERM, which
the SDK handles (``JobScaler.handle_shutdown``): its loops end within the fake's long-poll hold,
and its heartbeat child (a daemon process) goes with it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import RedisServer
    from tests.fakes.ollama import FakeOllama
    from tests.fakes.runpod_jobs import FakeRunPod

__all__ = ["RunPodStack", "SDKWorker", "runpod_stack"]

_REPO = Path(__file__).resolve().parent.parent
_DROPPED = ("CCRELAY_", "RUNPOD_", "OLLAMA_", "LLM_BACKEND", "ENABLE_MULTI_BACKEND")
_STOP_WITHIN_S = 15.0


class SDKWorker:
    """One worker process taking `runpod`'s jobs; its output in ``directory/worker.log``."""

    def __init__(
        self,
        runpod: FakeRunPod,
        engine_env: dict[str, str],
        directory: Path,
        *,
        worker_id: str = "worker-sdk-1",
    ) -> None:
        self.runpod = runpod
        self.worker_id = worker_id
        home = directory / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
        env.pop("REDIS_URL", None)
        env.update(
            HOME=str(home),
            CCRELAY_STATE_DIR=str(directory / "state"),
            PYTHONUNBUFFERED="1",
            **runpod.worker_env(worker_id),
            **engine_env,
        )
        self.log_path = directory / "worker.log"
        self._log = self.log_path.open("wb")
        self._mark = 0  # where this test's part of the log starts
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ccrelay_handler"],
            cwd=_REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_taking(self, within_s: float = 30.0) -> None:
        """Until the SDK's loop has asked the fake for a job (the worker is up)."""
        assert self.runpod.queue is not None
        deadline = time.monotonic() + within_s
        while not self.runpod.queue.taking(self.worker_id):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({self.process.returncode}):\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker took no job within {within_s:g} s:\n{self.log()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """What it wrote since `mark` (the whole log until then)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_bytes()[self._mark :].decode("utf-8", errors="replace")

    def mark(self) -> None:
        """Start `log` (and so the verdicts) here: a shared worker's next test reads its own."""
        if not self._log.closed:
            self._log.flush()
        self._mark = self.log_path.stat().st_size

    def cache_verdicts(self) -> list[str]:
        """The handler's verdicts, in order, from its request log lines."""
        return re.findall(r"\bchat cache=(hit|miss|bypass)\b", self.log())

    def wait_verdicts(self, count: int, within_s: float = 10.0) -> list[str]:
        deadline = time.monotonic() + within_s
        while len(verdicts := self.cache_verdicts()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return verdicts

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it outlives `_STOP_WITHIN_S`; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=_STOP_WITHIN_S)
        self._log.close()
        return self.process.returncode


@dataclass
class RunPodStack:
    """A queue endpoint with one real worker: `runpod` (a `FakeRunPod` with real workers),
    `worker` (an `SDKWorker`), its engine `ollama` (a `FakeOllama`) and its `redis`; the fakes
    are served from threads, so synchronous and async tests (and subprocesses) reach them."""

    runpod: FakeRunPod
    worker: SDKWorker
    ollama: FakeOllama
    redis: RedisServer

    def reset(self) -> None:
        """Forget the previous test: the engine's answers, knobs and records, the cache, the
        endpoint's jobs and records, the worker's log so far."""
        assert self.worker.alive(), self.worker.log()
        ollama = self.ollama
        ollama.answers.clear()
        ollama.recorded.clear()
        ollama.seen_prompts.clear()
        ollama.responder = None
        ollama.delay = ollama.chunk_delay = 0.0
        ollama.fail = ollama.fail_mid_stream = None
        _flush_redis(self.redis.port)
        runpod = self.runpod
        assert runpod.queue is not None
        runpod.requests.clear()
        runpod.openai_requests.clear()
        runpod.jobs.clear()
        runpod.cancels.clear()
        runpod.queue.requests.clear()
        self.worker.mark()


@contextmanager
def runpod_stack(directory: Path, **worker_env: str) -> Iterator[RunPodStack]:
    """Start a `RunPodStack` (`worker_env`: more of the worker's variables, e.g.
    ``OLLAMA_CONTEXT_LENGTH``), wait until its worker takes jobs, and stop it all after."""
    from tests.conftest import RedisServer
    from tests.fakes.ollama import FakeOllama
    from tests.fakes.runpod_jobs import FakeRunPod

    with ExitStack() as stack:
        redis = RedisServer(directory / "redis")
        redis.start()
        stack.callback(redis.stop)
        ollama = FakeOllama().start_in_thread()
        stack.callback(ollama.stop_thread)
        runpod = FakeRunPod(real_workers=True).start_in_thread()
        stack.callback(runpod.stop_thread)
        engine = {"REDIS_URL": redis.url, "OLLAMA_HOST": ollama.url, **worker_env}
        worker = SDKWorker(runpod, engine, directory / "worker")
        stack.callback(worker.stop)
        worker.wait_taking()
        yield RunPodStack(runpod, worker, ollama, redis)


def _flush_redis(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
