"""Tool ids and names across the two sides' rules: blank names, ids Anthropic refuses, names
over OpenAI's 64 characters; every rewrite stateless and reversible."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ccrelay_translate import (
    UNNAMED_TOOL,
    OpenAIStreamTranslator,
    anthropic_to_openai_request,
    openai_to_anthropic_response,
    tool_name_map,
)
from ccrelay_translate.errors import InvalidRequest
from ccrelay_translate.naming import anthropic_tool_id, openai_tool_name, upstream_tool_id
from tests.stream_check import check_stream

from .samples import chunk, tool_delta

ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG = "mcp__a_rather_long_server_name__" + "x" * 60 + "_tool"  # 97 characters


def request(**fields: Any) -> dict[str, Any]:
    return {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}], **fields}


def streamed(chunks: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    translator = OpenAIStreamTranslator("m", **kwargs)
    events = [e for c in chunks for e in translator.feed(c)] + translator.finish()
    return check_stream(events).model_dump(exclude_none=True)


def completion(*calls: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": None, "tool_calls": list(calls)}
    return {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}


def call(call_id: str, name: str, arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def history(tool_id: str, name: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": {"a": 1}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "done"}],
        },
    ]


# -- 1. blank names ------------------------------------------------------------------------


def test_a_streamed_call_whose_name_never_comes_closes_with_the_placeholder() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", args='{"a":1}')),
        chunk({}, finish_reason="tool_calls"),
    ]
    (block,) = streamed(chunks)["content"]
    assert block["name"] == UNNAMED_TOOL
    assert block["input"] == {"a": 1}


def test_a_non_streamed_call_without_a_name_gets_the_same_placeholder() -> None:
    reply = completion({"id": "c0", "function": {"arguments": "{}"}})
    (block,) = openai_to_anthropic_response(reply, model="m")["content"]
    assert block["name"] == UNNAMED_TOOL


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_name_in_the_history_is_sent_as_the_placeholder(blank: str) -> None:
    body = anthropic_to_openai_request(request(messages=history("toolu_1", blank)), model="m")
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == UNNAMED_TOOL


def test_the_placeholder_is_a_valid_name_on_both_sides() -> None:
    assert OPENAI_NAME.match(UNNAMED_TOOL)
    assert openai_tool_name(UNNAMED_TOOL) == UNNAMED_TOOL


# -- 2. ids Anthropic refuses --------------------------------------------------------------

KIMI_IDS = ["functions.Read:0", "functions.Bash:12", "call 1", "ид:1", "a/b+c=="]


@pytest.mark.parametrize("upstream_id", KIMI_IDS)
def test_an_invalid_id_is_encoded_and_decoded_back(upstream_id: str) -> None:
    encoded = anthropic_tool_id(upstream_id)
    assert ANTHROPIC_ID.match(encoded)
    assert upstream_tool_id(encoded) == upstream_id


@pytest.mark.parametrize(
    "valid", ["toolu_01A", "call_abc-123", "ccrid_", "ccrid_Zm9v", "ccrid_!!", "x"]
)
def test_a_valid_id_is_never_touched_either_way(valid: str) -> None:
    if ANTHROPIC_ID.match(valid):
        assert anthropic_tool_id(valid) == valid
    # "ccrid_Zm9v" decodes to "foo", an id that needs no encoding: not one of ours
    assert upstream_tool_id(valid) == valid


def test_kimi_ids_round_trip_through_claude_code_non_streamed() -> None:
    reply = completion(call("functions.Read:0", "Read"), call("functions.Bash:1", "Bash"))
    content = openai_to_anthropic_response(reply, model="m")["content"]
    ids = [block["id"] for block in content]
    assert all(ANTHROPIC_ID.match(i) for i in ids)
    # Claude Code sends them back in its history; the upstream gets its own ids again
    body = anthropic_to_openai_request(request(messages=history(ids[0], "Read")), model="m")
    assert body["messages"][1]["tool_calls"][0]["id"] == "functions.Read:0"
    assert body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "functions.Read:0",
        "content": "done",
    }


def test_kimi_ids_are_encoded_when_streamed() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="functions.Read:0", name="Read", args='{"p":')),
        chunk(tool_delta(0, call_id="functions.Read:0", args='"x"}')),
        chunk(tool_delta(1, call_id="functions.Bash:1", name="Bash", args="{}")),
        chunk({}, finish_reason="tool_calls"),
    ]
    content = streamed(chunks)["content"]
    assert [upstream_tool_id(b["id"]) for b in content] == ["functions.Read:0", "functions.Bash:1"]
    assert all(ANTHROPIC_ID.match(b["id"]) for b in content)
    assert content[0]["input"] == {"p": "x"}


def test_an_id_repeated_for_two_calls_is_made_unique() -> None:
    """vLLM's kimi_k2 ids could repeat (vllm-project/vllm#33141): Claude Code needs one each."""
    reply = completion(call("functions.Read:7", "Read"), call("functions.Read:7", "Read"))
    ids = [b["id"] for b in openai_to_anthropic_response(reply, model="m")["content"]]
    assert len(set(ids)) == 2
    chunks = [
        chunk(tool_delta(0, call_id="dup", name="A", args="{}")),
        chunk(tool_delta(1, call_id="dup", name="B", args="{}")),
        chunk({}, finish_reason="tool_calls"),
    ]
    assert len({b["id"] for b in streamed(chunks)["content"]}) == 2


# -- 3. names over 64 characters -----------------------------------------------------------


def test_a_long_name_is_shortened_deterministically() -> None:
    short = openai_tool_name(LONG)
    assert OPENAI_NAME.match(short) and len(short) == 64
    assert short.startswith(LONG[:55] + "_")
    assert openai_tool_name(LONG) == short  # the same in every process: no state
    assert openai_tool_name(LONG + "2") != short
    assert openai_tool_name("Read") == "Read"
    assert openai_tool_name("x" * 64) == "x" * 64


def test_long_names_are_shortened_in_tools_choice_and_history_and_restored() -> None:
    short = openai_tool_name(LONG)
    req = request(
        tools=[{"name": LONG, "input_schema": {"type": "object"}}, {"name": "Read"}],
        tool_choice={"type": "tool", "name": LONG},
        messages=history("toolu_1", LONG),
    )
    body = anthropic_to_openai_request(req, model="m")
    assert [t["function"]["name"] for t in body["tools"]] == [short, "Read"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": short}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    names = tool_name_map(req)
    assert names == {short: LONG}

    reply = completion(call("c1", short), call("c2", "Read"))
    content = openai_to_anthropic_response(reply, model="m", tool_names=names)["content"]
    assert [b["name"] for b in content] == [LONG, "Read"]

    chunks = [
        chunk(tool_delta(0, call_id="c1", name=short, args="{}")),
        chunk({}, finish_reason="tool_calls"),
    ]
    assert streamed(chunks, tool_names=names)["content"][0]["name"] == LONG


def test_tool_choice_naming_an_unknown_long_tool_is_refused_with_the_name_brief() -> None:
    req = request(tools=[{"name": "Read"}], tool_choice={"type": "tool", "name": LONG})
    with pytest.raises(InvalidRequest, match="no tool named") as info:
        anthropic_to_openai_request(req, model="m")
    assert LONG not in str(info.value)
