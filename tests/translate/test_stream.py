"""OpenAIStreamTranslator: chunk sequences as real servers send them -> Anthropic events.

Every stream is also validated against the Anthropic SDK's event types and accumulated with
the SDK's own accumulator (`check_events`), so "valid" means what Claude Code's SDK accepts.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ccrelay_translate import (
    RAW_ARGUMENTS_KEY,
    OpenAIStreamTranslator,
    anthropic_events_to_response,
)
from ccrelay_translate.errors import MalformedReply
from ccrelay_translate.naming import UNNAMED_TOOL
from tests.stream_check import check_stream

from .samples import check_events, chunk, pieces, tool_delta, usage_chunk


def run(
    chunks: list[dict[str, Any]], **kwargs: Any
) -> tuple[list[dict[str, Any]], OpenAIStreamTranslator]:
    translator = OpenAIStreamTranslator("claude-sonnet-4-5", **kwargs)
    events: list[dict[str, Any]] = []
    for item in chunks:
        events += translator.feed(item)
    events += translator.finish()
    assert translator.finish() == []  # idempotent
    check_stream(events)  # every stream here: the strict order check and the SDK's accumulator
    return events, translator


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Our assembly, cross-checked with the SDK's accumulator on content and stop reason."""
    sdk = check_events(events)
    ours = anthropic_events_to_response(events)
    assert ours["content"] == sdk["content"]
    assert ours["stop_reason"] == sdk["stop_reason"]
    assert ours["usage"]["output_tokens"] == sdk["usage"]["output_tokens"]
    return ours


def test_text_stream_with_usage_chunk_exact_events() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, finish_reason="stop"),
        usage_chunk(30, 2),
    ]
    events, translator = run(chunks, input_tokens_estimate=28)
    fresh = events[0]["message"]["id"]
    assert fresh.startswith("msg_") and "chatcmpl" not in fresh
    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": fresh,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 28, "output_tokens": 0},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": 30, "output_tokens": 2},
        },
        {"type": "message_stop"},
    ]
    assert translator.finished_cleanly
    assert assemble(events)["content"] == [{"type": "text", "text": "Hello"}]


def test_text_then_two_parallel_tool_calls_with_fragmented_arguments() -> None:
    args_a = json.dumps({"path": "/repo/app.py", "limit": 200})
    args_b = json.dumps({"pattern": "def test_", "path": "/repo/tests"})
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "I'll check "}),
        chunk({"content": "both."}),
        chunk(tool_delta(0, call_id="call_a", name="Read", args="")),
        *[chunk(tool_delta(0, args=p)) for p in pieces(args_a, 5)],
        chunk(tool_delta(1, call_id="call_b", name="Grep", args="")),
        *[chunk(tool_delta(1, args=p)) for p in pieces(args_b, 3)],
        chunk({}, finish_reason="tool_calls"),
        usage_chunk(1200, 61, cached=1024),
    ]
    events, translator = run(chunks)
    response = assemble(events)
    assert response["content"] == [
        {"type": "text", "text": "I'll check both."},
        {"type": "tool_use", "id": "call_a", "name": "Read", "input": json.loads(args_a)},
        {"type": "tool_use", "id": "call_b", "name": "Grep", "input": json.loads(args_b)},
    ]
    assert response["stop_reason"] == "tool_use"
    assert response["usage"] == {
        "input_tokens": 176,
        "output_tokens": 61,
        "cache_read_input_tokens": 1024,
    }
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"] for s in starts[1:]] == [
        {"type": "tool_use", "id": "call_a", "name": "Read", "input": {}},
        {"type": "tool_use", "id": "call_b", "name": "Grep", "input": {}},
    ]
    # each call's arguments go out whole, as the model wrote them, when the call closes
    json_deltas = [e for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert [(d["index"], d["delta"]["partial_json"]) for d in json_deltas] == [
        (1, args_a),
        (2, args_b),
    ]
    assert translator.finished_cleanly


def test_blocks_are_emitted_as_soon_as_possible() -> None:
    translator = OpenAIStreamTranslator("m")
    first = translator.feed(chunk({"content": "a"}))
    assert [e["type"] for e in first] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
    ]
    second = translator.feed(chunk(tool_delta(0, call_id="c0", name="f", args='{"x":')))
    assert [e["type"] for e in second] == ["content_block_stop", "content_block_start"]
    assert translator.feed(chunk(tool_delta(0, args="1}"))) == []  # arguments wait for the stop
    finishing = translator.feed(chunk({}, finish_reason="tool_calls"))
    assert finishing == [
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"x":1}'},
        },
        {"type": "content_block_stop", "index": 1},
    ]  # the end waits for usage
    ending = translator.feed(usage_chunk(10, 5))
    assert [e["type"] for e in ending] == ["message_delta", "message_stop"]
    assert ending[0]["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert translator.finish() == []
    assert translator.feed(chunk({"content": "late"})) == []  # nothing after message_stop
    check_stream(first + second + finishing + ending)


def test_usage_in_the_finish_chunk_ends_at_once() -> None:
    translator = OpenAIStreamTranslator("m")
    first = translator.feed(chunk({"content": "hi"}))
    events = translator.feed(
        chunk({}, finish_reason="stop", usage={"prompt_tokens": 9, "completion_tokens": 1})
    )
    assert [e["type"] for e in events] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[1]["usage"] == {"input_tokens": 9, "output_tokens": 1}
    assert translator.finish() == []
    check_stream(first + events)


def test_usage_before_the_finish_is_kept_and_the_latest_wins() -> None:
    chunks = [
        chunk({"content": "abc"}, usage={"prompt_tokens": 5, "completion_tokens": 1}),
        chunk({"content": "def"}, usage={"prompt_tokens": 5, "completion_tokens": 2}),
        chunk({}, finish_reason="stop", usage=None),
    ]
    events, _ = run(chunks)
    assert events[-2]["usage"] == {"input_tokens": 5, "output_tokens": 2}


def test_no_usage_at_all_estimates_output_tokens() -> None:
    events, _ = run([chunk({"content": "x" * 41}), chunk({}, finish_reason="stop")])
    assert events[-2]["usage"] == {"output_tokens": 11}  # ceil(41 / 4); input left to message_start
    assert assemble(events)["usage"] == {"input_tokens": 0, "output_tokens": 11}


def test_interleaved_tool_calls_lose_nothing() -> None:
    args = [json.dumps({"file": f"/f{i}.py", "text": "x" * (10 + i)}) for i in range(3)]
    frags = [pieces(a, 4) for a in args]
    chunks = [chunk(tool_delta(i, call_id=f"call_{i}", name=f"T{i}")) for i in range(3)]
    for step in range(max(len(f) for f in frags)):
        for i in range(3):
            if step < len(frags[i]):
                chunks.append(chunk(tool_delta(i, args=frags[i][step])))
    chunks.append(chunk({}, finish_reason="tool_calls"))
    events, _ = run(chunks)
    response = assemble(events)
    assert [(b["id"], b["name"], b["input"]) for b in response["content"]] == [
        (f"call_{i}", f"T{i}", json.loads(args[i])) for i in range(3)
    ]
    # each call's arguments go out whole when it closes, in the order the calls began
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    assert [(d["index"], d["delta"]["partial_json"]) for d in deltas] == list(enumerate(args))


@pytest.mark.parametrize("seed", range(40))
def test_random_fragmentation_and_interleaving(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(1, 4)
    inputs = [
        {"n": i, "s": "é" * rng.randint(0, 30), "deep": {"list": list(range(rng.randint(0, 5)))}}
        for i in range(count)
    ]
    text = "".join(rng.choice("ab \n") for _ in range(rng.randint(0, 40)))
    queues = []
    for i, value in enumerate(inputs):
        raw = json.dumps(value)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(0, 8))))
        frags = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        first = tool_delta(i, call_id=f"call_{i}", name=f"tool_{i}", args=frags[0])
        queues.append([first] + [tool_delta(i, args=f) for f in frags[1:]])
    chunks = [chunk({"content": p}) for p in pieces(text, 3)]
    interleave = rng.random() < 0.5
    order: list[int] = []  # calls in order of first appearance: the order of their blocks
    while any(queues):
        waiting = [k for k, q in enumerate(queues) if q]
        i = rng.choice(waiting) if interleave else waiting[0]
        if i not in order:
            order.append(i)
        chunks.append(chunk(queues[i].pop(0)))
    chunks.append(chunk({}, finish_reason="tool_calls"))
    chunks.append(usage_chunk(100, 50))
    events, translator = run(chunks)
    response = assemble(events)
    expected: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    expected += [
        {"type": "tool_use", "id": f"call_{i}", "name": f"tool_{i}", "input": inputs[i]}
        for i in order
    ]
    assert response["content"] == expected
    assert response["stop_reason"] == "tool_use"
    assert translator.finished_cleanly


def test_whole_tool_calls_in_one_chunk() -> None:
    """Ollama and some vLLM parsers send each call whole, several in one delta."""
    delta = {
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "c0",
                "type": "function",
                "function": {"name": "A", "arguments": '{"a":1}'},
            },
            {
                "index": 1,
                "id": "c1",
                "type": "function",
                "function": {"name": "B", "arguments": '{"b":2}'},
            },
        ],
    }
    events, _ = run([chunk(delta), chunk({}, finish_reason="tool_calls")])
    assert [(b["name"], b["input"]) for b in assemble(events)["content"]] == [
        ("A", {"a": 1}),
        ("B", {"b": 2}),
    ]


def test_every_call_at_index_zero_with_distinct_ids() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="A", args='{"a":')),
        chunk(tool_delta(0, args="1}")),
        chunk(tool_delta(0, call_id="c1", name="B", args='{"b":2}')),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["id"], b["input"]) for b in assemble(events)["content"]] == [
        ("c0", {"a": 1}),
        ("c1", {"b": 2}),
    ]


def test_id_repeated_on_every_chunk() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="A", args='{"a"')),
        chunk(tool_delta(0, call_id="c0", args=":1}")),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["id"], b["input"]) for b in assemble(events)["content"]] == [("c0", {"a": 1})]


def test_calls_without_index_are_found_by_id_or_latest() -> None:
    def call(call_id: str | None = None, name: str | None = None, args: str = "") -> dict[str, Any]:
        entry: dict[str, Any] = {"function": {"arguments": args}}
        if call_id:
            entry["id"] = call_id
        if name:
            entry["function"]["name"] = name
        return {"tool_calls": [entry]}

    chunks = [
        chunk(call("c0", "A", '{"a":')),
        chunk(call(args="1}")),  # no index, no id: the latest call
        chunk(call("c1", "B", '{"b":')),
        chunk(call("c1", args="2}")),  # found by id
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["id"], b["input"]) for b in assemble(events)["content"]] == [
        ("c0", {"a": 1}),
        ("c1", {"b": 2}),
    ]


def test_missing_id_is_generated() -> None:
    events, _ = run(
        [chunk(tool_delta(0, name="A", args="{}")), chunk({}, finish_reason="tool_calls")]
    )
    (block,) = assemble(events)["content"]
    assert block["id"].startswith("toolu_")


def test_name_arriving_after_the_arguments_is_waited_for() -> None:
    translator = OpenAIStreamTranslator("m")
    early = translator.feed(chunk(tool_delta(0, call_id="c0", args='{"q":')))
    assert [e["type"] for e in early] == ["message_start"]  # cannot start without a name
    named = translator.feed(chunk(tool_delta(0, name="Search", args='"x"}')))
    assert [e["type"] for e in named] == ["content_block_start"]
    assert named[0]["content_block"]["name"] == "Search"
    events = (
        early + named + translator.feed(chunk({}, finish_reason="tool_calls")) + translator.finish()
    )
    assert assemble(events)["content"][0]["input"] == {"q": "x"}  # assemble: check_stream too


def test_arguments_sent_as_an_object() -> None:
    delta = {
        "tool_calls": [{"index": 0, "id": "c", "function": {"name": "A", "arguments": {"k": [1]}}}]
    }
    events, _ = run([chunk(delta), chunk({}, finish_reason="tool_calls")])
    assert assemble(events)["content"][0]["input"] == {"k": [1]}


def test_legacy_function_call_delta() -> None:
    chunks = [
        chunk({"function_call": {"name": "f", "arguments": '{"x"'}}),
        chunk({"function_call": {"arguments": ":1}"}}),
        chunk({}, finish_reason="function_call"),
    ]
    events, _ = run(chunks)
    response = assemble(events)
    assert [(b["name"], b["input"]) for b in response["content"]] == [("f", {"x": 1})]
    assert response["stop_reason"] == "tool_use"


def test_text_after_tool_calls_gets_its_own_block() -> None:
    chunks = [
        chunk({"content": "before"}),
        chunk(tool_delta(0, call_id="c0", name="A", args="{}")),
        chunk({"content": "after"}),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [b["type"] for b in assemble(events)["content"]] == ["text", "tool_use", "text"]


def test_reasoning_content_is_ignored() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Let me think", "content": None}),
        chunk({"reasoning_content": " more", "reasoning": "also this"}),
        chunk({"content": "Answer"}),
        chunk({}, finish_reason="stop"),
    ]
    events, _ = run(chunks)
    assert assemble(events)["content"] == [{"type": "text", "text": "Answer"}]
    assert "think" not in json.dumps(events)


def test_empty_and_null_choices_are_fine() -> None:
    chunks = [
        {"id": "gen-1", "choices": []},
        {"id": "gen-1", "choices": None},
        {"id": "gen-1"},
        chunk({"content": "ok"}, chunk_id="gen-1"),
        chunk({}, finish_reason="stop", chunk_id="gen-1"),
        {"id": "gen-1", "choices": None, "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    ]
    events, translator = run(chunks)
    assert events[0]["message"]["id"].startswith("msg_")
    assert assemble(events)["usage"] == {"input_tokens": 3, "output_tokens": 1}
    assert translator.finished_cleanly


def test_other_choices_and_chunks_after_finish_are_ignored() -> None:
    chunks = [
        chunk({"content": "zero"}),
        {"id": "x", "choices": [{"index": 1, "delta": {"content": "one"}, "finish_reason": None}]},
        chunk({}, finish_reason="stop"),
        chunk({"content": "ghost"}),
    ]
    events, _ = run(chunks)
    assert assemble(events)["content"] == [{"type": "text", "text": "zero"}]


@pytest.mark.parametrize(
    ("finish_reason", "extra", "stop_reason", "stop_sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("content_filter", {}, "refusal", None),
        ("stop", {"stop_reason": "</answer>"}, "stop_sequence", "</answer>"),
        ("stop", {"stop_reason": None}, "end_turn", None),
    ],
)
def test_stop_reasons(
    finish_reason: str, extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
) -> None:
    events, _ = run([chunk({"content": "x"}), chunk({}, finish_reason=finish_reason, **extra)])
    assert events[-2]["delta"] == {"stop_reason": stop_reason, "stop_sequence": stop_sequence}


def test_length_cut_inside_tool_arguments_keeps_them_raw() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c", name="Write", args='{"content": "abc')),
        chunk({}, finish_reason="length"),
    ]
    events, _ = run(chunks)
    ours = anthropic_events_to_response(events)
    assert ours["stop_reason"] == "max_tokens"
    assert ours["content"][0]["input"] == {RAW_ARGUMENTS_KEY: '{"content": "abc'}
    check_events(events)  # the SDK's partial-JSON parser accepts the cut-off input too


# -- truncated streams ----------------------------------------------------------------------


def test_truncated_stream_with_tool_calls_still_ends_validly() -> None:
    chunks = [
        chunk({"content": "Running"}),
        chunk(tool_delta(0, call_id="c0", name="Bash", args='{"command": "ls"}')),
        chunk(tool_delta(1, call_id="c1", name="Read", args='{"path": "/')),
    ]
    events, translator = run(chunks)
    assert not translator.finished_cleanly
    check_events(events)
    response = anthropic_events_to_response(events)
    assert response["stop_reason"] == "tool_use"
    assert response["content"][1]["input"] == {"command": "ls"}
    assert response["content"][2]["id"] == "c1"
    assert response["content"][2]["input"] == {RAW_ARGUMENTS_KEY: '{"path": "/'}


def test_truncated_text_stream() -> None:
    events, translator = run([chunk({"content": "half a sent"})])
    assert not translator.finished_cleanly
    assert assemble(events)["stop_reason"] == "end_turn"
    assert assemble(events)["content"] == [{"type": "text", "text": "half a sent"}]


def test_truncated_interleaved_calls_are_all_closed() -> None:
    chunks = [
        chunk(tool_delta(0, call_id="c0", name="A", args='{"a":')),
        chunk(tool_delta(1, call_id="c1", name="B", args='{"b":2}')),
    ]
    events, translator = run(chunks)
    assert not translator.finished_cleanly
    response = anthropic_events_to_response(events)
    check_events(events)
    assert [b["id"] for b in response["content"]] == ["c0", "c1"]
    assert response["content"][1]["input"] == {"b": 2}


def test_unnamed_call_at_the_end_still_gets_a_block() -> None:
    events, _ = run([chunk(tool_delta(0, call_id="c0", args='{"a":1}'))])
    response = assemble(events)
    assert response["content"] == [
        {"type": "tool_use", "id": "c0", "name": UNNAMED_TOOL, "input": {"a": 1}}
    ]


def test_finish_without_any_chunk() -> None:
    events, translator = run([], input_tokens_estimate=12)
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert not translator.finished_cleanly
    assert assemble(events)["content"] == []


# -- ids and errors -------------------------------------------------------------------------


def test_message_id_given() -> None:
    translator = OpenAIStreamTranslator("m", message_id="msg_fixed")
    assert translator.feed(chunk({"content": "x"}))[0]["message"]["id"] == "msg_fixed"
    assert translator.message_id == "msg_fixed"


def test_the_message_id_is_fresh_whatever_the_upstream_sends() -> None:
    ids = set()
    for _ in range(3):  # Ollama repeats its chatcmpl-<0..998> ids: ours never repeat
        translator = OpenAIStreamTranslator("m")
        translator.feed(chunk({"content": "x"}, chunk_id="chatcmpl-77"))
        assert translator.message_id is not None and "chatcmpl" not in translator.message_id
        ids.add(translator.message_id)
    assert len(ids) == 3


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_streams_as_a_thinking_block_then_the_text(field: str) -> None:
    chunks = [
        chunk({"role": "assistant", field: "Let me "}),
        chunk({field: "think."}),
        chunk({"content": "Answer."}),
        chunk({}, finish_reason="stop"),
    ]
    translator = OpenAIStreamTranslator("m", thinking_display="summarized")
    events = [e for c in chunks for e in translator.feed(c)] + translator.finish()
    kinds = [
        (e["type"], (e.get("delta") or e.get("content_block") or {}).get("type")) for e in events
    ]
    assert kinds[1:8] == [
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
    ]
    response = assemble(events)
    assert response["content"][0] == {
        "type": "thinking",
        "thinking": "Let me think.",
        "signature": "ccrelay-unsigned",
    }
    assert response["content"][1] == {"type": "text", "text": "Answer."}


def test_omitted_display_streams_the_block_without_its_text() -> None:
    translator = OpenAIStreamTranslator("m", thinking_display="omitted")
    events = translator.feed(chunk({"reasoning": "secret musings"})) + translator.feed(
        chunk({"content": "Hi"}, finish_reason="stop")
    )
    events += translator.finish()
    assert "secret musings" not in str(events)
    assert events[1]["content_block"]["type"] == "thinking"
    assert check_stream(events).content[0].type == "thinking"


def test_reasoning_is_dropped_when_thinking_was_not_asked_for() -> None:
    translator = OpenAIStreamTranslator("m")  # thinking_display "none"
    events = translator.feed(chunk({"reasoning": "musings", "content": "Hi"}))
    events += translator.finish()
    check_stream(events)
    assert "musings" not in str(events)
    assert [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"] == [
        "text"
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("data", "a stream chunk is not a JSON object"),
        ({"choices": {}}, "a stream chunk's choices is not a list"),
        ({"error": {"message": "overloaded"}}, "the stream carried an error: overloaded"),
        ({"choices": [{"delta": {"tool_calls": ["x"]}}]}, "a streamed tool call is not an object"),
        (
            {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
            "a streamed tool call's function is not an object",
        ),
    ],
)
def test_garbage_chunks_raise_protocol_error(bad: object, message: str) -> None:
    translator = OpenAIStreamTranslator("m", backend="runpod")
    with pytest.raises(MalformedReply) as info:
        translator.feed(bad)  # type: ignore[arg-type]
    assert info.value.message == message
    assert info.value.backend == "runpod"


def test_odd_index_values_fall_back_to_the_id() -> None:
    chunks = [
        chunk(
            {
                "tool_calls": [
                    {"index": [0], "id": "c0", "function": {"name": "A", "arguments": '{"a"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": None, "id": "c0", "function": {"arguments": ":1}"}}]}),
        chunk({}, finish_reason="tool_calls"),
    ]
    events, _ = run(chunks)
    assert [(b["id"], b["input"]) for b in assemble(events)["content"]] == [("c0", {"a": 1})]
