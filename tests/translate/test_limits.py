"""Refusals that stay short (issue 25): every echoed value brief, and a body nested deeper
than the translation can write refused at the boundary, naming where."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ccrelay_translate import (
    MAX_DEPTH,
    OpenAIStreamTranslator,
    anthropic_to_openai_request,
    check_depth,
    estimate_tokens,
    openai_to_anthropic_response,
)
from ccrelay_translate.capabilities import Capabilities
from ccrelay_translate.errors import InvalidRequest, brief
from ccrelay_translate.limits import nests_deeper_than
from tests.stream_check import check_stream

from .samples import chunk, claude_code_request

HUGE = "R" * 100_000


def base(**fields: Any) -> dict[str, Any]:
    return {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}], **fields}


# -- 12. brief refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        base(messages=[{"role": HUGE, "content": "x"}]),
        base(messages=[{"role": "user", "content": [{"type": HUGE}]}]),
        base(messages=[{"role": "assistant", "content": [{"type": HUGE}]}]),
        base(system=[{"type": HUGE, "text": "x"}]),
        base(messages=[{"role": "system", "content": [{"type": HUGE}]}]),
        base(tools=[{"name": "f"}], tool_choice={"type": HUGE}),
        base(tools=[{"name": "f"}], tool_choice={"type": "tool", "name": HUGE}),
        base(messages=[{"role": {"deep": [HUGE]}, "content": "x"}]),
        base(messages=[{"role": 10**5000, "content": "x"}]),
    ],
)
def test_every_refusal_echoes_user_values_briefly(request_: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_to_openai_request(request_, model="m")
    assert len(info.value.message) < 200
    assert "R" * 41 not in info.value.message


def test_brief_cuts_with_an_ellipsis() -> None:
    assert brief("abc") == "'abc'"
    assert brief("x" * 100) == repr("x" * 39 + "\u2026")
    assert brief({"a": 1}) == "an object" and brief([1]) == "a list"
    assert brief(10**100) == "a very large number"


# -- 13. depth -------------------------------------------------------------------------------


def deep_schema(levels: int) -> dict[str, Any]:
    """An object schema whose JSON nests `levels` containers (itself the first)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range((levels - 1) // 2):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


def test_a_300_deep_tool_schema_is_refused_naming_its_path() -> None:
    request = claude_code_request()
    request["tools"][2]["input_schema"] = deep_schema(300)
    with pytest.raises(InvalidRequest) as info:
        check_depth(request)
    message = info.value.message
    assert message.startswith("tools[2].input_schema.properties.p.properties")
    assert f"nested more than {MAX_DEPTH} levels deep" in message
    assert len(message) < 250
    assert "Traceback" not in message


def test_check_depth_counts_the_body_as_the_first_level() -> None:
    check_depth([[1]], limit=2)
    with pytest.raises(InvalidRequest, match=r"^\[0\]\[0\]: nested more than 2"):
        check_depth([[[1]]], limit=2)
    with pytest.raises(InvalidRequest, match=r"^request\.a\[1\]: "):
        check_depth({"a": [0, [1]]}, limit=2, root="request")


def test_check_depth_takes_what_orjson_reads_without_recursion() -> None:
    body = orjson.loads("[" * 1024 + "]" * 1024)  # orjson's own read limit
    with pytest.raises(InvalidRequest, match="more levels"):
        check_depth(body)


def test_a_body_at_the_limit_translates_and_encodes_everywhere() -> None:
    """Nothing in the translation recurses past Python's limit or writes what orjson cannot."""
    request = claude_code_request()
    levels_left = MAX_DEPTH - 3  # body, tools, tools[0] come first
    request["tools"][0]["input_schema"] = deep_schema(levels_left)
    deep_input: Any = {}
    for _ in range(MAX_DEPTH - 6):  # body, messages, [1], content, [2] come first
        deep_input = {"k": deep_input}
    request["messages"][1]["content"][2]["input"] = deep_input
    request["output_config"]["format"] = {
        "type": "json_schema",
        "schema": deep_schema(MAX_DEPTH - 3),
    }
    check_depth(request)  # passes: exactly at the limit
    assert nests_deeper_than(request, MAX_DEPTH - 1)

    caps = Capabilities(strip_schema_keywords=frozenset({"$schema", "additionalProperties"}))
    for shaped in (None, caps):
        body = anthropic_to_openai_request(copy.deepcopy(request), model="m", caps=shaped)
        orjson.dumps(body)
    estimate_tokens(request)

    arguments = orjson.dumps(deep_input).decode()
    reply = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "c", "function": {"name": "Read", "arguments": arguments}}
                    ]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    orjson.dumps(openai_to_anthropic_response(reply, model="m"))
    translator = OpenAIStreamTranslator("m")
    call = {"index": 0, "id": "c", "function": {"name": "Read", "arguments": arguments}}
    events = translator.feed(chunk({"tool_calls": [call]}))
    events += translator.finish()
    check_stream(events)


def test_tool_arguments_nested_too_deep_are_kept_as_text() -> None:
    arguments = '{"a":' * 300 + "1" + "}" * 300
    reply = {
        "choices": [
            {
                "message": {
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]
                }
            }
        ]
    }
    (block,) = openai_to_anthropic_response(reply, model="m")["content"]
    assert block["input"] == {"_raw_arguments": arguments}
    orjson.dumps(block)

    translator = OpenAIStreamTranslator("m")
    events = translator.feed(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "f", "arguments": arguments}}
                ]
            }
        )
    )
    events += translator.finish()
    assert check_stream(events).content[0].input == {"_raw_arguments": arguments}
    assert translator.repaired_tool_calls == 1
