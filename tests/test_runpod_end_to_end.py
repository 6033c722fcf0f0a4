"""The RunPod path end to end, every part real: `ccrelay ask` -> RunPod API -> handler -> Redis/Ollama.

A real redis-server, a loopback fake Ollama (OpenAI-compatible, counting requests), the
handler under the runpod SDK's local API server (``python -m ccrelay_handler --rp_serve_api``), and
``ccrelay ask --backend runpod`` run twice as real subprocesses. The first answer is a cache
miss that reaches the engine, the second a hit that does not; both print the answer, and the
worker's verdict travels back with the stream into each ask's latency record.

The SDK's local server runs a job only when it is asked for its result: ``/runsync`` at once,
and a ``/run`` job on its first (POST) ``/stream`` or ``/status``. So both stream modes work
against it: ``poll`` with ``poll_method: POST``, and ``runsync``.

The SDK's local server has no OpenAI route and no live ``/stream``; the tests below the line
run the handler as RunPod does instead, under the SDK's job loop taking jobs from the fake
RunPod queue (`runpod_sdk`, `start_runpod_stack`), behind a real gateway: the default stream
mode (``openai``, the endpoint's OpenAI route) and ``poll``, streamed and plain, a cache miss
then hits, and a prompt the worker's window refuses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.factory import load_client_config, new_session
from ccrelay.gateway import GatewayServer, build_app
from ccrelay.latency.observer import Attempt, RequestSummary
from ccrelay.runtime import Runtime
from ccrelay_wire.sse import SSEDecoder
from tests.conftest import LocalHandler, RedisServer, local_handler
from tests.runpod_sdk_worker import RunPodStack

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


# -- the gateway's runpod backend -> the fake RunPod queue -> the handler under the SDK's loop --

PROMPT_TOO_LONG = re.compile(r"^prompt is too long: (\d+) tokens > 1792 maximum$")
"""Anchored, as Claude Code 2.1.332 matches it: the message is the worker's words alone."""


class Records:
    """The latency contract's observer: every attempt and every request summary."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.requests: list[RequestSummary] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def on_request(self, summary: RequestSummary) -> None:
        self.requests.append(summary)


def runpod_backends(stack: RunPodStack) -> dict[str, Any]:
    """One backend per stream mode, both on the stack's endpoint (a request picks one with
    ``x-ccrelay-backend``); no retries, quick polls."""
    return {
        f"rp-{mode}": {
            "type": "runpod",
            "endpoint_url": stack.runpod.endpoint_url,
            "api_key": stack.runpod.api_key,
            "stream_mode": mode,
            "poll_initial_s": 0.05,
            "poll_max_s": 0.2,
            "stream_poll_s": 0.05,
            "retry": {"max_attempts": 1, "initial_backoff_s": 0},
        }
        for mode in ("openai", "poll")
    }


@asynccontextmanager
async def gateway(stack: RunPodStack) -> AsyncIterator[tuple[str, Records]]:
    records = Records()
    env = {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(
            {"active": "rp-openai", "backends": runpod_backends(stack)}
        ),
    }
    runtime = Runtime(load_client_config(env), new_session(), observer=records)
    server = GatewayServer(build_app(runtime))
    await server.start()
    try:
        yield server.url, records
    finally:
        await server.close()
        await runtime.aclose()


async def ask(
    url: str, mode: str, prompt: str, *, stream: bool
) -> tuple[int, dict[str, str], bytes]:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/v1/messages", json=body, headers={"x-ccrelay-backend": f"rp-{mode}"}
        ) as reply,
    ):
        return reply.status, dict(reply.headers), await reply.read()


def streamed_text(raw: bytes) -> str:
    decoder = SSEDecoder()
    events = [json.loads(e.data) for e in decoder.feed(raw) + decoder.flush()]
    assert events[-1]["type"] == "message_stop", events
    return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")


@pytest.mark.parametrize("mode", ["openai", "poll"])
async def test_the_gateway_streams_from_the_sdk_worker_then_answers_from_its_cache(
    runpod_sdk: RunPodStack, mode: str
) -> None:
    async with gateway(runpod_sdk) as (url, records):
        first = await ask(url, mode, PROMPT, stream=True)
        second = await ask(url, mode, PROMPT, stream=True)
        plain = await ask(url, mode, PROMPT, stream=False)
    for status, headers, _ in (first, second, plain):
        assert status == 200
        assert headers["x-ccrelay-backend"] == f"rp-{mode}"
    assert [reply[1]["x-ccrelay-cache"] for reply in (first, second, plain)] == [
        "miss",
        "hit",
        "hit",
    ]
    assert streamed_text(first[2]) == streamed_text(second[2]) == f"Echo: {PROMPT}"
    message = json.loads(plain[2])
    assert message["content"] == [{"type": "text", "text": f"Echo: {PROMPT}"}]
    assert "x_ccrelay_cache" not in message and b"x_ccrelay_cache" not in first[2]
    # the worker's verdict reached the records: every attempt, and what the client got
    assert [(a.cache, a.streamed, a.outcome) for a in records.attempts] == [
        ("miss", True, "ok"),
        ("hit", True, "ok"),
        ("hit", False, "ok"),
    ]
    assert [r.cache for r in records.requests] == ["miss", "hit", "hit"]
    assert runpod_sdk.worker.wait_verdicts(3) == ["miss", "hit", "hit"]
    assert len(runpod_sdk.ollama.requests) == 1  # the engine answered once
    # how each went: the OpenAI route or /run + /stream for streams, /runsync for a plain one
    runpod = runpod_sdk.runpod
    paths = [r.path.removeprefix("/v2/fakeendpoint01") for r in runpod.requests]
    if mode == "openai":
        assert paths.count("/openai/v1/messages") == 2 and "/run" not in paths
    else:
        assert paths.count("/run") == 2 and "/openai/v1/messages" not in paths
    assert paths.count("/runsync") == 1
    assert all(job.status == "COMPLETED" for job in runpod.jobs.values())


async def test_a_prompt_over_the_workers_window_is_refused_in_claude_codes_words(
    start_runpod_stack: Callable[..., RunPodStack],
) -> None:
    """The worker's window (OLLAMA_CONTEXT_LENGTH 2048, less the output reserve: 1792) is not
    the backend's default, so the gateway sends the prompt and the worker refuses it, in the
    words Claude Code compacts on, in every way a request reaches it."""
    stack = start_runpod_stack(OLLAMA_CONTEXT_LENGTH="2048")
    prompt = "Summarise this log line by line. " + "GET /index.html 200 " * 600
    async with gateway(stack) as (url, records):
        replies = [
            await ask(url, mode, prompt, stream=stream)
            for mode in ("openai", "poll")
            for stream in (True, False)
        ]
    for status, _headers, body in replies:
        error = json.loads(body)
        assert (status, error["type"], error["error"]["type"]) == (
            400,
            "error",
            "invalid_request_error",
        ), body
        # the worker's words alone (no backend name in front), which Claude Code compacts on
        assert PROMPT_TOO_LONG.search(error["error"]["message"]), error
    assert stack.ollama.requests == []  # never sent to be truncated
    assert [a.outcome for a in records.attempts] == ["prompt_too_long"] * 4
