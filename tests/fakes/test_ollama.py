"""The Ollama fake against what ollama/ollama's source says it sends (paths in its modules).

These pin the fake's wire format, so a change to it that the real service would not make fails
here before it makes another test pass for the wrong reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.ollama import CURRENT, OLLAMA_0_13_5, FakeOllama, ModelCard, linux_asset
from tests.fakes.ollama.models import default_context
from tests.fakes.openai_compat import Answer

MODEL = "qwen3-coder:30b"


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server


async def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.text()


def _events(text: str) -> list[Any]:
    data = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


async def test_a_plain_stream_is_laid_out_as_the_current_release_lays_it_out(
    ollama: FakeOllama,
) -> None:
    ollama.push(Answer(text="Hello there"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    status, text = await _post(
        f"{ollama.base_url}/chat/completions", {**body, "stream_options": {"include_usage": True}}
    )
    events = _events(text)
    assert status == 200 and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert [c["choices"][0]["delta"] if c["choices"] else "usage" for c in chunks] == [
        {"role": "assistant", "content": "Hello "},
        {"content": "there"},
        {},
        "usage",
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    assert "usage" not in chunks[2] and chunks[3]["usage"]["total_tokens"] > 0
    assert len({(c["id"], c["created"], c["model"], c["system_fingerprint"]) for c in chunks}) == 1
    assert re.fullmatch(r"chatcmpl-\d{1,3}", chunks[0]["id"])


async def test_uuid_ids_are_a_knob() -> None:
    async with FakeOllama(ids="uuid") as ollama:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        _, text = await _post(f"{ollama.base_url}/chat/completions", body)
    assert re.fullmatch(r"chatcmpl-[0-9a-f-]{36}", json.loads(text)["id"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": MODEL, "messages": []}, 400, "[] is too short - 'messages'"),
        ({"model": "nope:1b", "messages": [{"role": "user", "content": "x"}]}, 404, None),
        (
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                        ],
                    }
                ],
            },
            400,
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
    ],
)
async def test_errors_have_ollama_s_openai_shape(
    ollama: FakeOllama, body: dict[str, Any], status: int, message: str | None
) -> None:
    got, text = await _post(f"{ollama.base_url}/chat/completions", body)
    error = json.loads(text)["error"]
    assert got == status
    assert error["message"] == (message or "model 'nope:1b' not found")
    assert error["type"] == ("invalid_request_error" if status == 400 else "not_found_error")
    assert error["param"] is None and error["code"] is None


@pytest.mark.parametrize(
    ("vram_gib", "context"), [(8, 4096), (23.5, 32768), (45, 32768), (47.5, 262144), (140, 262144)]
)
def test_the_default_context_follows_vram(vram_gib: float, context: int) -> None:
    assert default_context(CURRENT, context_length=None, vram_gib=vram_gib) == context
    assert default_context(OLLAMA_0_13_5, context_length=None, vram_gib=vram_gib) == 4096
    assert default_context(CURRENT, context_length=65536, vram_gib=vram_gib) == 65536


async def test_ps_reports_the_context_a_loaded_model_has() -> None:
    async with FakeOllama(context_length=131072) as ollama:
        status, _ = await _post(f"{ollama.url}/api/generate", {"model": MODEL, "prompt": ""})
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{ollama.url}/api/ps") as response:
                ps = await response.json()
            async with session.post(f"{ollama.url}/api/show", json={"model": MODEL}) as response:
                show = await response.json()
    assert status == 200
    assert [(m["name"], m["context_length"]) for m in ps["models"]] == [(MODEL, 131072)]
    assert show["model_info"]["qwen3moe.context_length"] == 262144  # the trained maximum


async def test_native_chat_with_truncate_false_gets_llama_server_s_400(ollama: FakeOllama) -> None:
    ollama.profile.context_length = 50
    messages = [{"role": "user", "content": "word " * 400}]
    status, text = await _post(
        f"{ollama.url}/api/chat",
        {"model": MODEL, "messages": messages, "truncate": False, "stream": False},
    )
    assert status == 400
    inner = json.loads(json.loads(text)["error"])["error"]
    assert inner["type"] == "exceed_context_size_error" and inner["n_ctx"] == 50
    status, text = await _post(
        f"{ollama.url}/api/chat", {"model": MODEL, "messages": messages, "stream": False}
    )
    assert status == 200 and json.loads(text)["prompt_eval_count"] == 50 - (50 - 4) // 2


async def test_the_openai_route_refuses_what_llama_server_refuses(ollama: FakeOllama) -> None:
    ollama.add_model("plain-gguf", ModelCard("plain-gguf", parser=None))
    ollama.profile.context_length = 50
    body = {"model": "plain-gguf", "messages": [{"role": "user", "content": "word " * 400}]}
    status, text = await _post(f"{ollama.base_url}/chat/completions", body)
    error = json.loads(text)["error"]
    assert status == 400 and error["type"] == "invalid_request_error"
    assert json.loads(error["message"])["error"]["type"] == "exceed_context_size_error"


async def test_a_native_stream_is_ndjson_with_a_done_line(ollama: FakeOllama) -> None:
    ollama.push(Answer(text="a b", tool_calls=[("Read", '{"p": 1}')]))
    status, text = await _post(
        f"{ollama.url}/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    )
    lines = [json.loads(line) for line in text.splitlines()]
    assert status == 200 and [line["done"] for line in lines] == [False, False, False, True]
    assert lines[2]["message"]["tool_calls"][0]["function"]["arguments"] == {"p": 1}
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] > 0


@pytest.mark.parametrize(
    ("version", "asset"),
    [
        ("0.13.5", "ollama-linux-amd64.tgz"),
        ("v0.14.0", "ollama-linux-amd64.tar.zst"),
        ("0.40.1", "ollama-linux-amd64.tar.zst"),
    ],
)
def test_release_assets_switched_to_zstd_at_0_14_0(version: str, asset: str) -> None:
    assert linux_asset(version, "amd64") == asset
    with pytest.raises(ValueError, match="amd64 and arm64"):
        linux_asset(version, "x86_64")
