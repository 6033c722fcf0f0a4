"""The OpenAI-speaking backends against fakes that behave like Cerebras, Ollama and vLLM.

Each case names the quirk it is about; the fakes (tests/fakes/openai_compat.py) cite where each
quirk comes from. Nothing here passes with a body the real service would refuse: the fakes
refuse it the way the service does.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.factory import BackendFactory, load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import UnknownModelError, UpstreamInvalidRequest
from ccrelay_translate import anthropic_events_to_response
from tests.fakes.openai_compat import Answer, ProfiledServer
from tests.pdf_samples import make_pdf

ADAPTIVE = {"type": "adaptive", "display": "summarized"}
GREP = {
    "name": "Grep",
    "description": "search files",
    "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1},  # a property *named* pattern
            "paths": {"type": "array", "items": {"type": "string", "format": "uri"}, "minItems": 1},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    },
}


def request(*content: Any, **fields: Any) -> dict[str, Any]:
    blocks = [c if isinstance(c, dict) else {"type": "text", "text": c} for c in content or ("hi",)]
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": blocks}],
        **fields,
    }


def build(session: aiohttp.ClientSession, server: ProfiledServer, kind: str, **fields: Any) -> Any:
    document = {
        "backends": {
            "b": {
                "type": kind,
                "base_url": server.base_url,
                "api_key": "k-123456",
                "retry": {"max_attempts": 1},
                **fields,
            }
        }
    }
    config = load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
    )
    return BackendFactory(config, session).get("b")


async def streamed(backend: Any, body: dict[str, Any]) -> dict[str, Any]:
    stream = await backend.open_stream(body, RequestOptions())
    events = [event async for event in stream]
    return anthropic_events_to_response(events)


# -- Cerebras -------------------------------------------------------------------------------


async def test_cerebras_needs_no_model_and_picks_from_its_catalog(profiled, session) -> None:
    server = await profiled("cerebras")
    backend = build(session, server, "cerebras")
    completion = await backend.complete(request(), RequestOptions())
    assert completion.model == "gpt-oss-120b"  # preferred over qwen-3.8-27b
    assert server.requests[-1]["model"] == "gpt-oss-120b"


async def test_a_retired_cerebras_model_fails_naming_the_live_ones(profiled, session) -> None:
    server = await profiled("cerebras")
    backend = build(session, server, "cerebras", model="qwen-3-coder-480b")
    with pytest.raises(UnknownModelError) as caught:
        await backend.complete(request(), RequestOptions())
    message = caught.value.message
    assert "model asked for: 'qwen-3-coder-480b'" in message
    assert "does not exist" in message  # Cerebras' own words are kept
    assert "gpt-oss-120b" in message and "qwen-3.8-27b" in message
    assert caught.value.status == 404


@pytest.mark.parametrize("stream", [False, True])
async def test_cerebras_reasoning_becomes_thinking_and_effort_goes_to_gpt_oss_only(
    profiled, session, stream: bool
) -> None:
    server = await profiled("cerebras")
    server.push(Answer(reasoning="Two plus two.", text="4"), Answer(reasoning="Hmm.", text="4"))
    body = request("2+2?", thinking=ADAPTIVE)
    gpt = build(session, server, "cerebras")
    qwen = build(session, server, "cerebras", model="qwen-3.8-27b")
    for backend in (gpt, qwen):
        response = (
            await streamed(backend, body)
            if stream
            else (await backend.complete(body, RequestOptions())).response
        )
        kinds = [block["type"] for block in response["content"]]
        assert kinds == ["thinking", "text"]
        assert response["content"][1]["text"] == "4"  # reasoning never in the answer
    assert server.requests[0]["reasoning_effort"] == "medium"  # adaptive -> medium
    assert "reasoning_effort" not in server.requests[1]  # qwen-3.8 would answer 400


async def test_cerebras_tool_schemas_lose_the_keywords_it_rejects(profiled, session) -> None:
    server = await profiled("cerebras")
    server.push(Answer(tool_calls=[("Grep", '{"pattern": "TODO"}')]))
    backend = build(session, server, "cerebras")
    completion = await backend.complete(request(tools=[GREP]), RequestOptions())
    assert completion.response["content"][0]["input"] == {"pattern": "TODO"}
    sent = server.requests[-1]["tools"][0]["function"]["parameters"]
    assert set(sent["properties"]) == {"pattern", "paths"}  # the property named "pattern" stays
    assert "minItems" not in json.dumps(sent) and "format" not in json.dumps(sent)
    assert GREP["input_schema"]["properties"]["pattern"]["minLength"] == 1  # the input unchanged


async def test_a_schema_refusal_names_the_tool(profiled, session) -> None:
    server = await profiled("cerebras")
    backend = build(session, server, "cerebras", accepts={"strip_schema_keywords": []})
    with pytest.raises(UpstreamInvalidRequest) as caught:
        await backend.complete(request(tools=[GREP]), RequestOptions())
    assert "used by tool(s): Grep" in caught.value.message
    assert "accepts.strip_schema_keywords" in caught.value.message


async def test_cerebras_gets_no_field_it_would_refuse(profiled, session) -> None:
    """A Claude Code-shaped request: history with thinking, images, a title schema, 6 stops."""
    server = await profiled("cerebras")
    png = base64.b64encode(b"\x89PNG fake").decode()
    body = request(
        "look",
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        thinking=ADAPTIVE,
        stop_sequences=["a", "b", "c", "d", "e", "f"],
        output_config={
            "effort": "high",
            "format": {
                "type": "json_schema",
                "schema": {"type": "object", "properties": {"title": {"type": "string"}}},
            },
        },
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        tools=[GREP],
        metadata={"user_id": "u"},
        context_management={"edits": []},
    )
    body["messages"] = [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "old musing", "signature": "sig"},
                {"type": "text", "text": "ok"},
            ],
        },
        *body["messages"],
    ]
    completion = await build(session, server, "cerebras").complete(body, RequestOptions())
    assert completion.response["content"]
    sent = server.requests[-1]
    assert len(sent["stop"]) == 4
    assert sent["response_format"]["json_schema"]["name"]
    assert sent["reasoning_effort"] == "high"
    assert "parallel_tool_calls" not in sent
    assert "[image left out" in json.dumps(sent["messages"])  # text-only models


# -- Ollama (a local Ollama, or the worker's HTTP mode) ------------------------------------


async def test_ollama_repeating_ids_never_reach_the_caller(profiled, session) -> None:
    server = await profiled("ollama", id_pool=2)  # Ollama's 0..998 range, narrowed
    backend = build(session, server, "ollama")
    ids = set()
    for _ in range(6):
        ids.add((await backend.complete(request(), RequestOptions())).response["id"])
    assert len(ids) == 6


@pytest.mark.parametrize(
    ("source", "kept"),
    [
        ({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}, True),
        ({"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}, True),
        ({"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"}, False),
        ({"type": "url", "url": "https://example.test/cat.png"}, False),
    ],
)
async def test_ollama_gets_only_the_images_it_can_decode(profiled, session, source, kept) -> None:
    server = await profiled("ollama")
    backend = build(session, server, "ollama")
    await backend.complete(
        request("what is this?", {"type": "image", "source": source}), RequestOptions()
    )
    content = server.requests[-1]["messages"][-1]["content"]
    has_image = isinstance(content, list) and any(p["type"] == "image_url" for p in content)
    assert has_image is kept
    assert kept or "[image left out" in json.dumps(content)


async def test_ollama_sees_one_system_message_and_every_reminder(profiled, session) -> None:
    server = await profiled("ollama")
    backend = build(session, server, "ollama")
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;",
            },
            {"type": "text", "text": "You are Claude Code."},
        ],
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": "Plan mode is on."},
            {"role": "user", "content": "c"},
        ],
    }
    await backend.complete(body, RequestOptions())
    seen = server.seen_prompts[-1]
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user"]
    assert seen[0]["content"] == "You are Claude Code."  # no billing line: a stable prefix
    assert "Plan mode is on." in seen[-1]["content"]  # the mid-conversation system text kept


async def test_ollama_streams_whole_tool_calls_into_tool_use(profiled, session) -> None:
    server = await profiled("ollama")
    server.push(
        Answer(
            text="Reading.",
            tool_calls=[("Read", '{"file_path": "/a.py"}'), ("Bash", '{"command": "ls"}')],
        )
    )
    response = await streamed(build(session, server, "ollama"), request("go"))
    uses = [b for b in response["content"] if b["type"] == "tool_use"]
    assert [(u["name"], u["input"]) for u in uses] == [
        ("Read", {"file_path": "/a.py"}),
        ("Bash", {"command": "ls"}),
    ]
    assert response["stop_reason"] == "tool_use"


async def test_a_pdf_reaches_ollama_as_its_text(profiled, session) -> None:
    server = await profiled("ollama")
    pdf = base64.b64encode(make_pdf(["Quarterly report", "Revenue grew 12 percent"])).decode()
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    await build(session, server, "ollama").complete(
        request(document, "summarise"), RequestOptions()
    )
    sent = json.dumps(server.requests[-1]["messages"])
    assert "Revenue grew 12 percent" in sent and "2 page(s)" in sent


# -- vLLM -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_vllm_reasoning_content_becomes_thinking(profiled, session, stream: bool) -> None:
    server = await profiled("vllm")
    server.push(Answer(reasoning="Consider the file.", text="Done."))
    backend = build(session, server, "openai", model="Qwen/Qwen3-Coder-30B-A3B-Instruct")
    body = request("go", thinking={"type": "enabled", "budget_tokens": 2048})
    response = (
        await streamed(backend, body)
        if stream
        else (await backend.complete(body, RequestOptions())).response
    )
    assert response["content"][0] == {
        "type": "thinking",
        "thinking": "Consider the file.",
        "signature": "ccrelay-unsigned",
    }
    assert response["content"][1] == {"type": "text", "text": "Done."}


async def test_ccrelay_ask_on_cerebras_needs_no_model_and_names_live_ones_for_a_retired_id(
    profiled, monkeypatch, capsys
) -> None:
    from tests.client.cli.conftest import ccrelay, use_config

    server = await profiled("cerebras")
    server.push(Answer(reasoning="easy", text="Paris."))
    use_config(
        monkeypatch,
        {
            "backends": {
                "cerebras": {"type": "cerebras", "base_url": server.base_url, "api_key": "csk-x"}
            }
        },
    )
    assert await ccrelay("ask", "capital of France?") == 0
    out, err = capsys.readouterr()
    assert out.strip() == "Paris." and "model=gpt-oss-120b" in err
    use_config(
        monkeypatch,
        {
            "backends": {
                "cerebras": {
                    "type": "cerebras",
                    "base_url": server.base_url,
                    "api_key": "csk-x",
                    "model": "qwen-3-coder-480b",
                    "retry": {"max_attempts": 1},
                }
            }
        },
    )
    assert await ccrelay("ask", "capital of France?") == 2  # the config names a retired id
    err = capsys.readouterr().err
    assert "qwen-3-coder-480b" in err and "gpt-oss-120b, qwen-3.8-27b" in err
