"""ChatService against a real redis-server and the fake Ollama: Redis before inference."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

import pytest
import redis

from ccrelay_handler.cache import canonical_json
from ccrelay_handler.chunks import CompletionAssembler
from ccrelay_handler.service import ChatService, StreamVerdict
from tests.fakes.ollama import CURRENT, OLLAMA_0_13_5, FakeOllama
from tests.fakes.openai_compat import Answer

from .helpers import cache_lines, chat


async def _collect(service: ChatService, request) -> list[dict]:
    return [chunk async for chunk in service.stream(request)]


def _text(chunks: list[dict]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


async def test_miss_then_hit(service: ChatService, ollama_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    first = await service.complete(chat("what is 2+2"))
    second = await service.complete(chat("what is 2+2"))
    assert first == second
    assert first["choices"][0]["message"]["content"] == "Echo: what is 2+2"
    assert len(ollama_server.chat_requests) == 1
    key = service.cache_key(chat("what is 2+2"))
    digest = key.rsplit(":", 1)[1]
    lines = cache_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith(f"chat cache=miss key={digest[:12]} ms=")
    assert lines[1].startswith(f"chat cache=hit key={digest[:12]} ms=")


async def test_key_format_and_what_it_hashes(service: ChatService) -> None:
    request = chat("x", temperature=0.5)
    key = service.cache_key(request)
    expected = hashlib.sha256(
        canonical_json(request.key_material("qwen3-coder:30b")).encode()
    ).hexdigest()
    assert key == f"ccrelay:v1:{expected}"


async def test_key_ignores_stream_and_transport_fields(service: ChatService) -> None:
    base = service.cache_key(chat("x"))
    assert service.cache_key(chat("x", stream=True)) == base
    assert (
        service.cache_key(chat("x", stream=True, stream_options={"include_usage": False})) == base
    )
    assert service.cache_key(chat("x", user="someone")) == base
    assert service.cache_key(chat("x", cache={"mode": "no-cache", "ttl": 5})) == base
    assert service.cache_key(chat("x", model="qwen3-coder:30b")) == base  # the default, resolved


async def test_key_changes_with_output_affecting_fields(service: ChatService) -> None:
    tool = {"type": "function", "function": {"name": "ls", "parameters": {"type": "object"}}}
    keys = {
        service.cache_key(chat("x")),
        service.cache_key(chat("y")),
        service.cache_key(chat("x", temperature=0.1)),
        service.cache_key(chat("x", temperature=0.2)),
        service.cache_key(chat("x", tools=[tool])),
        service.cache_key(chat("x", tools=[tool], tool_choice="required")),
        service.cache_key(chat("x", seed=1)),
        service.cache_key(chat("x", max_tokens=10)),
        service.cache_key(chat("x", stop=["\n"])),
        service.cache_key(chat("x", response_format={"type": "json_object"})),
    }
    assert len(keys) == 10


async def test_streamed_hit_replays_the_stored_completion(
    service: ChatService, ollama_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    completion = await service.complete(chat("tell me a story"))
    chunks = await _collect(service, chat("tell me a story", stream=True))
    assert len(ollama_server.chat_requests) == 1
    assert _text(chunks) == completion["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == completion["usage"]
    assert "cache=hit" in cache_lines(caplog)[-1] and "stream=true" in cache_lines(caplog)[-1]


async def test_stream_miss_is_stored_then_served_plain(service: ChatService, ollama_server) -> None:
    chunks = await _collect(service, chat("stream first", stream=True))
    assert len(chunks) > 3  # passed through as the engine streamed it
    assert ollama_server.chat_requests[0].body["stream"] is True
    assert ollama_server.chat_requests[0].body["stream_options"] == {"include_usage": True}
    completion = await service.complete(chat("stream first"))
    assert len(ollama_server.chat_requests) == 1
    assembled = CompletionAssembler()
    for chunk in chunks:
        assembled.add(chunk)
    assert completion == assembled.completion()
    assert completion["choices"][0]["message"]["content"] == "Echo: stream first"
    assert completion["object"] == "chat.completion"


async def test_stream_hit_then_stream_again(service: ChatService, ollama_server) -> None:
    first = await _collect(service, chat("twice", stream=True))
    second = await _collect(service, chat("twice", stream=True))
    assert _text(first) == _text(second) == "Echo: twice"
    assert len(ollama_server.chat_requests) == 1


@pytest.mark.parametrize(
    ("cache", "expected"),
    [({}, ["miss", "hit"]), ({"mode": "no-cache"}, ["bypass", "bypass"])],
)
async def test_stream_verdict_is_known_before_the_first_chunk(
    service: ChatService, cache: dict, expected: list[str]
) -> None:
    seen = []
    for _ in range(2):
        holder = StreamVerdict()
        stream = service.stream(chat("verdict", stream=True, cache=cache), verdict=holder)
        assert holder.value is None
        first = await anext(stream)
        seen.append(holder.value)
        assert "x_ccrelay_cache" not in first  # the service never adds it; callers do
        rest = [chunk async for chunk in stream]
        assert _text([first, *rest]) == "Echo: verdict"
    assert seen == expected
    stored = await service.cache.get(service.cache_key(chat("verdict")))
    assert stored is None or "x_ccrelay_cache" not in str(stored)


async def test_stream_without_usage_when_client_opts_out(service: ChatService) -> None:
    request = chat("no usage", stream=True, stream_options={"include_usage": False})
    for chunks in (await _collect(service, request), await _collect(service, request)):
        assert all(c["choices"] for c in chunks)
        assert _text(chunks) == "Echo: no usage"


async def test_tool_calls_survive_the_cache(service: ChatService, ollama_server) -> None:
    ollama_server.responder = lambda _body: Answer(
        tool_calls=[("read_file", json.dumps({"path": "x.py"}))]
    )
    streamed = await _collect(service, chat("use a tool", stream=True))
    plain = await service.complete(chat("use a tool"))
    replayed = await _collect(service, chat("use a tool", stream=True))
    assert len(ollama_server.chat_requests) == 1
    call = plain["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "read_file"
    assert json.loads(call["function"]["arguments"]) == {"path": "x.py"}  # re-encoded compact
    assert plain["choices"][0]["finish_reason"] == "tool_calls"
    for chunks in (streamed, replayed):
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
        assert calls[0]["function"]["name"] == "read_file"


async def test_no_cache_skips_the_read_but_stores(
    service: ChatService, ollama_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    await service.complete(chat("fresh"))
    await service.complete(chat("fresh", cache={"mode": "no-cache"}))
    assert len(ollama_server.chat_requests) == 2
    ollama_server.responder = lambda _body: Answer(text="second answer")
    await service.complete(chat("fresh", cache={"mode": "no-cache"}))
    hit = await service.complete(chat("fresh"))
    assert hit["choices"][0]["message"]["content"] == "second answer"  # no-cache stored it
    assert len(ollama_server.chat_requests) == 3
    assert "cache=bypass" in cache_lines(caplog)[1]


async def test_no_store_neither_reads_nor_writes(
    service: ChatService, ollama_server, redis_server
) -> None:
    await service.complete(chat("private", cache={"mode": "no-store"}))
    chunks = await _collect(service, chat("private", stream=True, cache={"mode": "no-store"}))
    assert _text(chunks) == "Echo: private"
    assert redis.Redis.from_url(redis_server.url).keys("*") == []
    await service.complete(chat("private"))
    assert len(ollama_server.chat_requests) == 3


async def test_ttl_default_and_per_request(service: ChatService, redis_server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    await service.complete(chat("default ttl"))
    await service.complete(chat("short ttl", cache={"ttl": 30}))
    default_ttl = client.pttl(service.cache_key(chat("default ttl")))
    short_ttl = client.pttl(service.cache_key(chat("short ttl")))
    assert 86_390_000 < default_ttl <= 86_400_000
    assert 29_000 < short_ttl <= 30_000
    client.close()


async def test_entry_expires(make_settings, ollama_server) -> None:
    service = ChatService(make_settings(CCRELAY_CACHE_TTL="1"))
    try:
        await service.complete(chat("soon gone"))
        client = redis.Redis.from_url(make_settings().redis_url.get_secret_value())
        client.pexpire(service.cache_key(chat("soon gone")), 20)  # fast-forward the TTL
        client.close()
        await asyncio.sleep(0.05)
        await service.complete(chat("soon gone"))
        assert len(ollama_server.chat_requests) == 2
    finally:
        await service.aclose()


async def test_namespace_and_version_isolate_entries(make_settings, ollama_server) -> None:
    v1 = ChatService(make_settings())
    v2 = ChatService(make_settings(CCRELAY_CACHE_VERSION="v2"))
    try:
        await v1.complete(chat("versioned"))
        await v2.complete(chat("versioned"))
        assert len(ollama_server.chat_requests) == 2
        assert v2.cache_key(chat("versioned")).startswith("ccrelay:v2:")
    finally:
        await v1.aclose()
        await v2.aclose()


async def test_corrupt_entry_is_a_miss(service: ChatService, ollama_server, redis_server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set(service.cache_key(chat("corrupt")), b"not json")
    client.close()
    result = await service.complete(chat("corrupt"))
    assert result["choices"][0]["message"]["content"] == "Echo: corrupt"
    assert len(ollama_server.chat_requests) == 1


async def test_models_listing_is_narrowed_to_the_allowlist(
    service: ChatService, ollama_server
) -> None:
    ollama_server.models = ["qwen3-coder:30b", "llama3:8b"]
    listing = await service.models()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["qwen3-coder:30b"]


@pytest.mark.parametrize("stream", [False, True])
async def test_every_request_logs_exactly_one_line(
    service: ChatService, caplog, stream: bool
) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.handler")
    for _ in range(3):
        if stream:
            await _collect(service, chat("count me", stream=True))
        else:
            await service.complete(chat("count me"))
    assert [line.split()[1] for line in cache_lines(caplog)] == [
        "cache=miss",
        "cache=hit",
        "cache=hit",
    ]


@pytest.mark.parametrize("release", [CURRENT, OLLAMA_0_13_5], ids=lambda r: r.version)
async def test_either_ollama_layout_is_cached_and_replayed_whole(make_settings, release) -> None:
    """The image runs the current Ollama; HTTP mode on a host's own Ollama may meet 0.13.5.
    Both streams (releases.py) are stored as the completion the plain request would return."""
    engine = await FakeOllama(release=release).start()
    engine.push(
        Answer(
            reasoning="Two files.",
            text="Reading them.",
            tool_calls=[("Read", '{"file_path": "/a.py"}'), ("Read", '{"file_path": "/b.py"}')],
            finish="length",
        )
    )
    service = ChatService(make_settings(OLLAMA_HOST=engine.url))
    try:
        streamed = await _collect(service, chat("read both", stream=True))
        plain = await service.complete(chat("read both"))
        replayed = await _collect(service, chat("read both", stream=True))
    finally:
        await service.aclose()
        await engine.close()
    assert len(engine.chat_requests) == 1
    message = plain["choices"][0]["message"]
    assert message["content"] == "Reading them." and message["reasoning"] == "Two files."
    assert [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]] == [
        {"file_path": "/a.py"},
        {"file_path": "/b.py"},
    ]
    # 0.13.5 relabels any reason "tool_calls" once a call went out; since v0.32.6 "length" stays
    assert plain["choices"][0]["finish_reason"] == (
        "length" if release is CURRENT else "tool_calls"
    )
    assert plain["usage"]["total_tokens"] > 0
    for chunks in (streamed, replayed):
        assembler = CompletionAssembler()
        for chunk in chunks:
            assembler.add(chunk)
        assert assembler.completion()["choices"] == plain["choices"]
