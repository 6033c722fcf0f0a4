"""The RunPod handler: in process (what the generator yields) and under the real runpod SDK."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ccrelay_handler.runpod_handler import RunPodHandler
from ccrelay_handler.service import ChatService
from tests.conftest import LocalHandler, local_handler

REPO = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "hello worker"}]


@pytest.fixture
async def runpod_handler(service: ChatService) -> RunPodHandler:
    return RunPodHandler(service.settings, service=service)


async def _outputs(handler: RunPodHandler, job_input: Any) -> list[Any]:
    return [out async for out in handler.handle({"id": "job-1", "input": job_input})]


async def test_non_streamed_job_yields_one_completion(runpod_handler, ollama_server) -> None:
    outputs = await _outputs(runpod_handler, {"messages": MESSAGES})
    assert len(outputs) == 1
    assert outputs[0]["object"] == "chat.completion"
    assert outputs[0]["choices"][0]["message"]["content"] == "Echo: hello worker"


async def test_streamed_job_yields_chunk_dicts(runpod_handler) -> None:
    outputs = await _outputs(runpod_handler, {"messages": MESSAGES, "stream": True})
    assert len(outputs) > 3
    assert all(o["object"] == "chat.completion.chunk" for o in outputs)


async def test_streamed_job_first_chunk_carries_the_cache_verdict(runpod_handler) -> None:
    job_input = {"messages": MESSAGES, "stream": True}
    miss = await _outputs(runpod_handler, job_input)
    hit = await _outputs(runpod_handler, job_input)
    assert miss[0]["x_ccrelay_cache"] == "miss"
    assert hit[0]["x_ccrelay_cache"] == "hit"
    for outputs in (miss, hit):  # only the first chunk: the rest stay plain OpenAI chunks
        assert all("x_ccrelay_cache" not in o for o in outputs[1:])
        assert outputs[0]["object"] == "chat.completion.chunk"


async def test_streamed_job_verdict_is_bypass_without_the_cache(runpod_handler) -> None:
    job_input = {"messages": MESSAGES, "stream": True, "cache": {"mode": "no-store"}}
    outputs = await _outputs(runpod_handler, job_input)
    assert outputs[0]["x_ccrelay_cache"] == "bypass"


async def test_openai_route_stream_yields_sse_strings(runpod_handler) -> None:
    outputs = await _outputs(
        runpod_handler,
        {
            "openai_route": "/v1/chat/completions",
            "openai_input": {"messages": MESSAGES, "stream": True},
        },
    )
    assert all(
        isinstance(o, str) and o.startswith("data: ") and o.endswith("\n\n") for o in outputs
    )
    assert outputs[-1] == "data: [DONE]\n\n"
    first = json.loads(outputs[0].removeprefix("data: "))
    assert first["object"] == "chat.completion.chunk"
    # RunPod's proxy relays these strings as they are; the first carries the verdict
    assert first["x_ccrelay_cache"] == "miss"
    assert not any("x_ccrelay_cache" in o for o in outputs[1:])


async def test_openai_route_plain_and_models(runpod_handler) -> None:
    plain = await _outputs(
        runpod_handler,
        {
            "openai_route": "/v1/chat/completions",
            "openai_input": {"model": "qwen3-coder:30b", "messages": MESSAGES},
        },
    )
    assert plain[0]["object"] == "chat.completion"
    models = await _outputs(runpod_handler, {"openai_route": "/v1/models"})
    assert models == [
        {
            "object": "list",
            "data": [
                {
                    "id": "qwen3-coder:30b",
                    "object": "model",
                    "created": 1735689600,
                    "owned_by": "library",
                }
            ],
        }
    ]


@pytest.mark.parametrize(
    ("job_input", "expected"),
    [
        ({"messages": [{"role": "user"}], "temperature": "hot"}, "invalid input: temperature: "),
        (
            {"model": "gpt-4o", "messages": MESSAGES},
            "invalid input: model: model 'gpt-4o' is not allowed",
        ),
        ({"openai_route": "/v1/embeddings"}, "invalid input: openai_route: unsupported route"),
    ],
)
async def test_errors_are_strings(runpod_handler, job_input, expected: str) -> None:
    outputs = await _outputs(runpod_handler, job_input)
    assert len(outputs) == 1 and set(outputs[0]) == {"error"}
    assert isinstance(outputs[0]["error"], str)
    error = json.loads(outputs[0]["error"])
    assert error["message"].startswith(expected), error
    assert error["code"] in ("invalid_input", "model_not_allowed")


async def test_engine_error_is_a_string_with_the_engines_message(
    runpod_handler, ollama_server
) -> None:
    ollama_server.fail = (500, "model failed to load")
    outputs = await _outputs(runpod_handler, {"messages": MESSAGES})
    assert len(outputs) == 1 and isinstance(outputs[0]["error"], str)
    assert json.loads(outputs[0]["error"]) == {
        "message": "engine error (HTTP 500): model failed to load",
        "code": "engine_error",
    }


async def test_every_job_logs_exactly_one_line(runpod_handler, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    jobs = [
        {"messages": MESSAGES},
        {"messages": MESSAGES, "stream": True},
        {"openai_route": "/v1/models"},
        {"messages": "not a list"},
        {"model": "gpt-4o", "messages": MESSAGES},
    ]
    for job_input in jobs:
        await _outputs(runpod_handler, job_input)
    lines = [r.getMessage() for r in caplog.records if " cache=" in r.getMessage()]
    assert len(lines) == len(jobs)
    assert [line.split()[1] for line in lines] == [
        "cache=miss",
        "cache=hit",
        "cache=bypass",
        "cache=bypass",
        "cache=bypass",
    ]
    assert all(" id=job-1" in line and " ms=" in line for line in lines)


async def test_cancelled_job_propagates_and_stores_nothing(
    runpod_handler, ollama_server, redis_server
) -> None:
    ollama_server.delay = 0.5
    task = asyncio.create_task(_outputs(runpod_handler, {"messages": MESSAGES}))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert redis.Redis.from_url(redis_server.url).keys("*") == []


async def test_a_warm_up_is_answered_without_inference(make_settings, ollama_server) -> None:
    service = ChatService(make_settings(OLLAMA_CONTEXT_LENGTH="16384"))
    try:
        outputs = await _outputs(
            RunPodHandler(service.settings, service=service), {"ccrelay_warmup": True}
        )
    finally:
        await service.aclose()
    assert outputs == [{"warm": True, "model": "qwen3-coder:30b", "context_window": 16384}]
    assert ollama_server.chat_requests == []


async def test_the_model_list_reports_the_worker_s_window(make_settings, ollama_server) -> None:
    service = ChatService(make_settings(OLLAMA_CONTEXT_LENGTH="16384"))
    try:
        listing = await service.models()
    finally:
        await service.aclose()
    assert listing["data"] and all(m["context_window"] == 16384 for m in listing["data"])


def test_runpod_config(make_settings) -> None:
    handler = RunPodHandler(make_settings(OLLAMA_NUM_PARALLEL="6"))
    config = handler.runpod_config()
    assert config["return_aggregate_stream"] is True
    assert config["concurrency_modifier"](1) == 6
    assert inspect.isasyncgenfunction(config["handler"])  # what the SDK checks


# --- under the real runpod SDK ------------------------------------------------------------


@pytest.fixture
def local_worker(redis_server, ollama_server, tmp_path: Path) -> Iterator[LocalHandler]:
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "OLLAMA_HOST": ollama_server.url,
        "PYTHONUNBUFFERED": "1",
        "UVICORN_LOG_LEVEL": "warning",
    }
    with local_handler(env, tmp_path / "worker.log") as worker:
        yield worker


def test_under_the_runpod_sdk(local_worker: LocalHandler, ollama_server) -> None:
    job = {"input": {"model": "qwen3-coder:30b", "messages": MESSAGES}}
    first = local_worker.post("/runsync", job)
    second = local_worker.post("/runsync", job)

    # The SDK's local server aggregates a generator handler's outputs into a list.
    assert first["status"] == "COMPLETED"
    assert isinstance(first["output"], list) and len(first["output"]) == 1
    assert first["output"][0]["choices"][0]["message"]["content"] == "Echo: hello worker"
    assert first["output"][0]["x_ccrelay_cache"] == "miss"
    assert second["output"][0]["x_ccrelay_cache"] == "hit"
    strip = [
        {k: v for k, v in o.items() if k != "x_ccrelay_cache"}
        for o in (first["output"][0], second["output"][0])
    ]
    assert strip[0] == strip[1]
    assert len(ollama_server.chat_requests) == 1
    lines = local_worker.cache_lines()
    assert len(lines) == 2
    assert " cache=miss " in lines[0] and " cache=hit " in lines[1]
    assert lines[0].split("key=")[1][:12] == lines[1].split("key=")[1][:12]

    # RunPod's OpenAI route, streamed: SSE strings, [DONE] last; served from the same entry.
    streamed = local_worker.post(
        "/runsync",
        {
            "input": {
                "openai_route": "/v1/chat/completions",
                "openai_input": {**job["input"], "stream": True},
            }
        },
    )
    assert streamed["status"] == "COMPLETED"
    assert streamed["output"][-1] == "data: [DONE]\n\n"
    chunks = [json.loads(s.removeprefix("data: ")) for s in streamed["output"][:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: hello worker"
    assert len(ollama_server.chat_requests) == 1
    assert " cache=hit " in local_worker.cache_lines()[-1]

    models = local_worker.post("/runsync", {"input": {"openai_route": "/v1/models"}})
    assert models["output"][0]["data"][0]["id"] == "qwen3-coder:30b"

    # An error is a string. The local server does not apply the platform's rule (a yielded
    # {"error": str} fails the job): it answers COMPLETED with the error dict as the output.
    refused = local_worker.post("/runsync", {"input": {"model": "llama3", "messages": MESSAGES}})
    assert refused["status"] == "COMPLETED"
    assert len(refused["output"]) == 1 and isinstance(refused["output"][0]["error"], str)
    assert json.loads(refused["output"][0]["error"]) == {
        "message": "invalid input: model: model 'llama3' is not allowed on this worker "
        "(allowed: qwen3-coder:30b)",
        "code": "model_not_allowed",
    }
    log = local_worker.log()
    assert "Traceback" not in log
    assert "Echo: hello worker" not in log  # the SDK's DEBUG output logging is off by default
