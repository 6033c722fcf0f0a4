"""Streamed tool calls that arrive broken: arguments that are not JSON (issue 25), and a second
call reusing the first's index (with or without its id)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from ccrelay_translate import (
    RAW_ARGUMENTS_KEY,
    OpenAIStreamTranslator,
    openai_to_anthropic_response,
)
from tests.stream_check import check_stream

from .samples import chunk, pieces, tool_delta


def run(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], OpenAIStreamTranslator]:
    translator = OpenAIStreamTranslator("m", backend="vllm")
    events = [e for c in chunks for e in translator.feed(c)] + translator.finish()
    return events, translator


def tool_blocks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    message = check_stream(events).model_dump(exclude_none=True)
    return [b for b in message["content"] if b["type"] == "tool_use"]


# -- 10. broken arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        '{"path": ',  # cut short (issue 25's case)
        '{"path": "/a"}}',  # one brace too many
        '{"a": 1}{"b": 2}',  # two objects glued
        "[1, 2]",  # JSON, but not an object
        "not json at all",
        '{"n": NaN}',  # Python's json reads it; JSON has no NaN
    ],
)
def test_broken_streamed_arguments_close_as_the_same_repair_as_non_streamed(
    arguments: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ccrelay.translate")
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="Read", args="")),
        *[chunk(tool_delta(0, args=p)) for p in pieces(arguments, 3)],
        chunk({}, finish_reason="tool_calls"),
    ]
    events, translator = run(chunks)
    (block,) = tool_blocks(events)  # check_stream: every input_json_delta joins to an object
    assert block["input"] == {RAW_ARGUMENTS_KEY: arguments}
    assert translator.repaired_tool_calls == 1

    reply = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "c0", "function": {"name": "Read", "arguments": arguments}}
                    ]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    (same,) = openai_to_anthropic_response(reply, model="m")["content"]
    assert same["input"] == block["input"]

    lines = [r for r in caplog.records if r.name == "ccrelay.translate"]
    assert len(lines) == 2  # one per repair: the streamed one and the non-streamed one
    assert all(arguments not in r.getMessage() for r in lines)
    assert "vllm" in lines[0].getMessage() and "Read" in lines[0].getMessage()


def test_good_arguments_go_out_as_written_and_count_no_repair(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ccrelay.translate")
    written = '{ "path" : "/a",\n  "limit": 5 }'
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="Read", args=written)),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, translator = run(chunks)
    partial = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert partial == [written]
    assert translator.repaired_tool_calls == 0
    assert not caplog.records


def test_double_encoded_arguments_are_decoded_not_counted_as_broken() -> None:
    inner = json.dumps({"path": "/a"})
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="Read", args=json.dumps(inner))),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, translator = run(chunks)
    assert tool_blocks(events)[0]["input"] == {"path": "/a"}
    assert translator.repaired_tool_calls == 0


def test_empty_arguments_are_an_empty_object() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="Now", args="")),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, translator = run(chunks)
    assert tool_blocks(events)[0]["input"] == {}
    assert translator.repaired_tool_calls == 0


def test_a_truncated_stream_repairs_every_open_call() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="A", args='{"a": [1, 2')),
        chunk(tool_delta(1, call_id="c1", name="B", args='{"b": "x')),
    ]
    events, translator = run(chunks)
    assert [b["input"] for b in tool_blocks(events)] == [
        {RAW_ARGUMENTS_KEY: '{"a": [1, 2'},
        {RAW_ARGUMENTS_KEY: '{"b": "x'},
    ]
    assert translator.repaired_tool_calls == 2


# -- 5. a second call at a reused index ----------------------------------------------------
# Upstreams seen doing it: Ollama numbers every call 0 with distinct ids (ollama/ollama#15457);
# some stream a second whole call at index 0 with no id and a blank name (dyedd/lens#49) or
# with the same id; vLLM repeats one call's id on every chunk (spring-ai#6000), which must NOT
# split it. LiteLLM's own chunk builder glues such calls by index
# (litellm/litellm_core_utils/streaming_chunk_builder_utils.py, get_combined_tool_content).


def test_a_second_call_at_the_same_index_with_the_same_id_is_its_own_block() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="call_0", name="Glob", args='{"pattern": ')),
        chunk(tool_delta(0, call_id="call_0", args='"**/*"}')),
        chunk(tool_delta(0, call_id="call_0", name="Glob", args='{"path": "content"}')),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, translator = run(chunks)
    blocks = tool_blocks(events)
    assert [(b["name"], b["input"]) for b in blocks] == [
        ("Glob", {"pattern": "**/*"}),
        ("Glob", {"path": "content"}),
    ]
    assert blocks[0]["id"] != blocks[1]["id"]
    assert translator.repaired_tool_calls == 0


def test_a_second_call_at_the_same_index_without_id_or_name_takes_the_first_ones_name() -> None:
    """dyedd/lens#49: frame 3 is a second glob call, name "" and no id, still at index 0."""
    chunks = [
        chunk(tool_delta(0, call_id="toolu_530f", name="glob", args="")),
        chunk(tool_delta(0, name="", args='{"path":"","pattern":"**/*"}')),
        chunk(tool_delta(0, name="", args='{"path":"content/wiki","pattern":""}')),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["name"], b["input"]["path"]) for b in tool_blocks(events)] == [
        ("glob", ""),
        ("glob", "content/wiki"),
    ]


def test_a_new_name_at_a_finished_index_starts_another_call() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="x", name="Read", args='{"p": 1}')),
        chunk(tool_delta(0, name="Bash", args="")),
        chunk(tool_delta(0, args='{"c": "ls"}')),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["name"], b["input"]) for b in tool_blocks(events)] == [
        ("Read", {"p": 1}),
        ("Bash", {"c": "ls"}),
    ]


def test_vllm_repeating_the_id_and_name_on_every_chunk_is_one_call() -> None:
    args = json.dumps({"command": "pytest -q", "description": "run {the} tests}"})
    chunks = [chunk(tool_delta(0, call_id="chatcmpl-tool-1", name="Bash", args=""))]
    chunks += [chunk(tool_delta(0, call_id="chatcmpl-tool-1", args=p)) for p in pieces(args, 4)]
    chunks += [
        chunk(tool_delta(0, call_id="chatcmpl-tool-1", name="Bash", args="")),  # a repeat
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["name"], b["input"]) for b in tool_blocks(events)] == [("Bash", json.loads(args))]
