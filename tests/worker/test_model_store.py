"""ensure_model, the Ollama native client and pull progress, against the fake native API."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from ccrelay_worker.errors import ModelPullError, ModelWarmError
from ccrelay_worker.model_store import PullProgress, ensure_model
from ccrelay_worker.ollama_api import OllamaClient
from ccrelay_worker.pull_lock import PullLock
from tests.fakes.ollama import FakeOllama

MODEL = "qwen3-coder:30b"


def lock(directory: Path) -> PullLock:
    return PullLock(directory, timeout=10, poll_interval=0.01)


async def test_a_model_on_the_volume_is_never_pulled(
    ollama_native_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_native_server.add_model(MODEL)
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, ollama_native_server.url)
        result = await ensure_model(client, MODEL, lock(tmp_path))
    assert not result.pulled
    assert ollama_native_server.pull_count == 0
    assert ollama_native_server.tags_calls >= 1
    assert ollama_native_server.show_calls == [MODEL], "tags first, then show"
    assert not (tmp_path / ".ccrelay-pull.lock").exists(), "no lock taken when nothing to pull"


async def test_a_missing_model_is_pulled_and_then_listed(
    ollama_native_server: FakeOllama, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, ollama_native_server.url)
        result = await ensure_model(client, MODEL, lock(tmp_path))
        assert await client.has_model(MODEL)
    assert result.pulled and not result.waited_for_lock
    assert ollama_native_server.pulls == [MODEL]


async def test_two_tasks_with_their_own_lock_handles_pull_once(
    ollama_native_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_native_server.pull_delay = 0.02
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, ollama_native_server.url)
        first, second = await asyncio.gather(
            ensure_model(client, MODEL, lock(tmp_path)),
            ensure_model(client, MODEL, lock(tmp_path)),
        )
    assert ollama_native_server.pull_count == 1
    assert sorted([first.pulled, second.pulled]) == [False, True]
    waiter = first if not first.pulled else second
    assert waiter.waited_for_lock, "the waiter re-checked the tags after getting the lock"


async def test_a_model_name_without_tag_means_latest(
    ollama_native_server: FakeOllama,
) -> None:
    ollama_native_server.add_model("qwen3-coder")
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, ollama_native_server.url)
        assert await client.has_model("qwen3-coder:latest")
        assert await client.has_model("qwen3-coder")
        assert not await client.has_model(MODEL)


@pytest.mark.parametrize(
    ("knob", "expected"),
    [("http-500", "HTTP 500: registry unreachable"), ("error-line", "max retries exceeded")],
)
async def test_pull_failures_raise_with_ollamas_reason(
    ollama_native_server: FakeOllama, tmp_path: Path, knob: str, expected: str
) -> None:
    ollama_native_server.fail_pull = knob
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, ollama_native_server.url)
        with pytest.raises(ModelPullError) as caught:
            await ensure_model(client, MODEL, lock(tmp_path))
    assert expected in str(caught.value)
    assert caught.value.model == MODEL
    assert not (tmp_path / ".ccrelay-pull.lease").exists(), "the lock is released on failure"


async def test_warm_loads_the_model_with_keep_alive(ollama_native_server: FakeOllama) -> None:
    ollama_native_server.add_model(MODEL)
    async with aiohttp.ClientSession() as session:
        await OllamaClient(session, ollama_native_server.url).warm(
            MODEL, keep_alive=-1, load_within=5
        )
    assert ollama_native_server.warm_calls == [
        {"model": MODEL, "prompt": "", "keep_alive": -1, "stream": False}
    ]


async def test_a_failed_warm_says_what_to_do(ollama_native_server: FakeOllama) -> None:
    ollama_native_server.add_model(MODEL)
    ollama_native_server.fail_warm = True
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelWarmError) as caught:
            await OllamaClient(session, ollama_native_server.url).warm(
                MODEL, keep_alive="30m", load_within=5
            )
    message = str(caught.value)
    assert "requires more system memory" in message and "CCRELAY_WARM=0" in message
    assert caught.value.status == 500


def test_progress_reports_percent_speed_and_eta_throttled(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = PullProgress(MODEL, interval=10, clock=lambda: now[0])
    digest = "sha256:" + "a" * 64
    with caplog.at_level(logging.INFO, logger="ccrelay.worker.model"):
        progress.update({"status": "pulling manifest"})
        progress.update(
            {"status": "pulling aaaa", "digest": digest, "total": 1_000_000_000, "completed": 0}
        )
        now[0] = 5.0
        progress.update(
            {
                "status": "pulling aaaa",
                "digest": digest,
                "total": 1_000_000_000,
                "completed": 100_000_000,
            }
        )
        now[0] = 10.0
        progress.update(
            {
                "status": "pulling aaaa",
                "digest": digest,
                "total": 1_000_000_000,
                "completed": 500_000_000,
            }
        )
        progress.update({"status": "verifying sha256 digest"})
        progress.update({"status": "success"})
        progress.finish()
    assert progress.lines == [
        "pulling qwen3-coder:30b: pulling manifest",
        "pulling qwen3-coder:30b: 0.0% (0.0 MB of 1.00 GB)",
        "pulling qwen3-coder:30b: 50.0% (500.0 MB of 1.00 GB) at 50.0 MB/s, ETA 10s",
        "pulling qwen3-coder:30b: verifying sha256 digest",
        "pulling qwen3-coder:30b: success",
        "pulled qwen3-coder:30b: 500.0 MB on the volume",
    ]
    assert [r.getMessage() for r in caplog.records] == progress.lines
