"""The RunPod path end to end, every part real: `ccrelay ask` -> RunPod API -> handler -> Redis/Ollama.

A real redis-server, a loopback fake Ollama (OpenAI-compatible, counting requests), the
handler under the runpod SDK's local API server (``python -m handler --rp_serve_api``), and
``ccrelay ask --backend runpod`` run twice as real subprocesses. The first answer is a cache
miss that reaches the engine, the second a hit that does not; both print the answer.

The SDK's local server runs a job only when it is asked for its result: ``/runsync`` at once,
and a ``/run`` job on its first (POST) ``/stream`` or ``/status``. So both stream modes work
against it: ``poll`` with ``poll_method: POST``, and ``runsync``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "rp-e2e-secret-key-7f3a9c"
PROMPT = "Write hello world in Python"

pytestmark = pytest.mark.slow


class HandlerProcess:
    """`python -m handler` serving the runpod SDK's local API on a loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "handler",
                "--rp_serve_api",
                "--rp_api_port",
                str(self.port),
                "--rp_api_host",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the handler exited ({self.process.returncode}):\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the handler did not listen within {timeout_s:g} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cache_verdicts(self) -> list[str]:
        return re.findall(r"\bchat cache=(hit|miss|bypass)\b", self.log())

    def wait_verdicts(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(verdicts := self.cache_verdicts()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return verdicts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_BACKEND", "ENABLE_MULTI_BACKEND", "CCRELAY_", "RUNPOD_"))
        and k not in ("REDIS_URL", "OLLAMA_HOST")
    }
    env["CCRELAY_STATE_DIR"] = str(tmp_path / "state")
    return env


@pytest.fixture
def handler_process(
    redis_server: RedisServer, ollama_server: Any, tmp_path: Path
) -> Iterator[HandlerProcess]:
    env = _base_env(tmp_path)
    env.update(REDIS_URL=redis_server.url, OLLAMA_HOST=ollama_server.url)
    handler = HandlerProcess(env, tmp_path / "handler.log")
    try:
        handler.wait_ready()
        yield handler
    finally:
        handler.stop()


def ccrelay_ask(handler: HandlerProcess, tmp_path: Path, backend: dict[str, Any]) -> tuple:
    config = {"active": "runpod", "backends": {"runpod": backend}}
    env = _base_env(tmp_path)
    env.update(
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=json.dumps(config),
        RUNPOD_API_KEY=API_KEY,
    )
    done = subprocess.run(
        [sys.executable, "-m", "client.cli", "ask", "--backend", "runpod", PROMPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "mode",
    [
        {"stream_mode": "poll", "poll_method": "POST"},
        {"stream_mode": "runsync"},
    ],
    ids=["poll", "runsync"],
)
def test_second_identical_ask_is_served_from_redis(
    handler_process: HandlerProcess, ollama_server: Any, tmp_path: Path, mode: dict[str, str]
) -> None:
    backend = {
        "type": "runpod",
        "endpoint_url": handler_process.url,
        "api_key": "${RUNPOD_API_KEY}",
        "poll_initial_s": 0.05,
        "poll_max_s": 0.2,
        "stream_poll_s": 0.05,
        **mode,
    }
    expected = f"Echo: {PROMPT}"

    rc, out, err = ccrelay_ask(handler_process, tmp_path, backend)
    assert rc == 0, err
    assert expected in out
    assert "backend=runpod" in err
    assert handler_process.wait_verdicts(1) == ["miss"]
    assert len(ollama_server.chat_requests) == 1

    rc, out2, err2 = ccrelay_ask(handler_process, tmp_path, backend)
    assert rc == 0, err2
    assert expected in out2
    assert handler_process.wait_verdicts(2) == ["miss", "hit"]
    assert len(ollama_server.chat_requests) == 1  # the engine never saw the second ask

    # poll mode ran a streamed job (/run + /stream), runsync a plain one
    streamed = "true" if mode["stream_mode"] == "poll" else "false"
    assert re.findall(r"chat cache=\w+ .*? stream=(\w+)", handler_process.log()) == [streamed] * 2

    for text in (out, err, out2, err2, handler_process.log()):
        assert API_KEY not in text
