"""The RunPod path end to end, every part real: `ccrelay ask` -> RunPod API -> handler -> Redis/Ollama.

A real redis-server, a loopback fake Ollama (OpenAI-compatible, counting requests), the
handler under the runpod SDK's local API server (``python -m ccrelay_handler --rp_serve_api``), and
``ccrelay ask --backend runpod`` run twice as real subprocesses. The first answer is a cache
miss that reaches the engine, the second a hit that does not; both print the answer, and the
worker's verdict travels back with the stream into each ask's latency record.

The SDK's local server runs a job only when it is asked for its result: ``/runsync`` at once,
and a ``/run`` job on its first (POST) ``/stream`` or ``/status``. So both stream modes work
against it: ``poll`` with ``poll_method: POST``, and ``runsync``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LocalHandler, RedisServer, local_handler

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "rp-e2e-secret-key-7f3a9c"
PROMPT = "Write hello world in Python"

pytestmark = pytest.mark.slow


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
) -> Iterator[LocalHandler]:
    env = _base_env(tmp_path)
    env.update(REDIS_URL=redis_server.url, OLLAMA_HOST=ollama_server.url)
    with local_handler(env, tmp_path / "handler.log") as handler:
        yield handler


def ccrelay_ask(handler: LocalHandler, tmp_path: Path, backend: dict[str, Any]) -> tuple:
    config = {"active": "runpod", "backends": {"runpod": backend}}
    env = _base_env(tmp_path)
    env.update(
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=json.dumps(config),
        RUNPOD_API_KEY=API_KEY,
    )
    done = subprocess.run(
        [sys.executable, "-m", "ccrelay.cli", "ask", "--backend", "runpod", PROMPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def latency_records(state_dir: Path) -> list[dict[str, Any]]:
    lines = [
        line
        for path in sorted(state_dir.glob("latency-*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return sorted((json.loads(line) for line in lines), key=lambda r: r["timestamp"])


@pytest.mark.parametrize(
    "mode",
    [
        {"stream_mode": "poll", "poll_method": "POST"},
        {"stream_mode": "runsync"},
    ],
    ids=["poll", "runsync"],
)
def test_second_identical_ask_is_served_from_redis(
    handler_process: LocalHandler, ollama_server: Any, tmp_path: Path, mode: dict[str, str]
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

    # `ccrelay ask` streams: the worker's verdict came back with the stream, into the summary
    # line and the latency records (JSONL under $CCRELAY_STATE_DIR)
    assert "cache=miss" in err
    assert "cache=hit" in err2
    records = latency_records(tmp_path / "state")
    for kind in ("attempt", "request"):  # each try, and what the client got
        assert [
            (r["cache"], r["streamed"], r["outcome"]) for r in records if r["kind"] == kind
        ] == [("miss", True, "ok"), ("hit", True, "ok")]

    # poll mode ran a streamed job (/run + /stream), runsync a plain one
    streamed = "true" if mode["stream_mode"] == "poll" else "false"
    assert re.findall(r"chat cache=\w+ .*? stream=(\w+)", handler_process.log()) == [streamed] * 2

    for text in (out, err, out2, err2, handler_process.log()):
        assert API_KEY not in text
