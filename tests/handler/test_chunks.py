"""Streams fold into the completion the plain request returns, and replay back into chunks."""

from __future__ import annotations

import json

import pytest

from ccrelay_handler.chunks import SSE_DONE, CompletionAssembler, replay_chunks, sse_event
from tests.fakes.ollama import CURRENT, OLLAMA_0_13_5, ModelStore, OllamaProfile, Release
from tests.fakes.openai_compat import Answer

HEAD = {"id": "chatcmpl-9", "created": 1, "model": "m", "system_fingerprint": "fp_ollama"}


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {
        **HEAD,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_assemble_text_tool_calls_and_usage() -> None:
    assembler = CompletionAssembler()
    for chunk in [
        _chunk({"role": "assistant", "content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "ls", "arguments": '{"pa'},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "."}'}}]}),
        _chunk({}, "tool_calls"),
        {**HEAD, "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 3}},
    ]:
        assembler.add(chunk)
    completion = assembler.completion()
    assert completion == {
        **HEAD,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "ls", "arguments": '{"path": "."}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"total_tokens": 3},
    }


def test_replay_round_trips_through_the_assembler() -> None:
    completion = {
        **HEAD,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi there",
                    "reasoning": "Greet.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": '{"a":1}'},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    chunks = replay_chunks(completion)
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 6
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    # Ollama's layout: the role with the first text, then one field per chunk
    assert deltas[0] == {"role": "assistant", "reasoning": "Greet."}
    assert deltas[1] == {"content": "Hi there"}
    assert [d["tool_calls"][0]["index"] for d in deltas[2:4]] == [0, 1]
    assert deltas[4] == {} and chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[5]["choices"] == [] and chunks[5]["usage"]["total_tokens"] == 3
    assembler = CompletionAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.completion() == completion
    assert all("usage" not in c for c in replay_chunks(completion, include_usage=False))


def test_an_empty_answer_replays_as_a_role_chunk_and_a_finish() -> None:
    completion = {
        **HEAD,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}
        ],
    }
    chunks = replay_chunks(completion)
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {}]


def test_whole_tool_calls_all_at_index_0_stay_apart() -> None:
    """Ollama before v0.17.4 sent every whole tool call with ``index: 0``: a new id at an index
    already taken is a new call, not more arguments for the first."""
    assembler = CompletionAssembler()
    for call_id, name in (("call_a", "Read"), ("call_b", "Bash")):
        call = {"id": call_id, "index": 0, "type": "function"}
        call["function"] = {"name": name, "arguments": "{}"}
        assembler.add(_chunk({"role": "assistant", "content": "", "tool_calls": [call]}))
    assembler.add(_chunk({"role": "assistant", "content": ""}, "tool_calls"))
    calls = assembler.completion()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_a", "Read"),
        ("call_b", "Bash"),
    ]


@pytest.mark.parametrize("release", [CURRENT, OLLAMA_0_13_5], ids=lambda r: r.version)
@pytest.mark.parametrize("finish", ["stop", "length"])
def test_an_ollama_stream_assembles_into_its_completion(release: Release, finish: str) -> None:
    """Whatever the layout (releases.py), the stream folds into what the plain request returns."""
    answer = Answer(
        reasoning="Look first.",
        text="Reading two files.",
        tool_calls=[("Read", '{"file_path": "/a.py"}'), ("Read", '{"file_path": "/b.py"}')],
        finish=finish,
    )
    profile = OllamaProfile(ModelStore(), release=release)
    head = {**HEAD, "model": "qwen3-coder:30b"}
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    assembler = CompletionAssembler()
    for chunk in profile.chunks(head, answer, usage):
        assembler.add(chunk)
    assembled = assembler.completion()
    plain = profile.completion(head, answer, usage)
    got, want = assembled["choices"][0], plain["choices"][0]
    assert got["finish_reason"] == want["finish_reason"]
    assert got["message"]["content"] == want["message"]["content"] == "Reading two files."
    assert got["message"]["reasoning"] == want["message"]["reasoning"] == "Look first."
    assert [c["function"] for c in got["message"]["tool_calls"]] == [
        c["function"] for c in want["message"]["tool_calls"]
    ]
    assert assembled["usage"] == usage


def test_sse_framing() -> None:
    event = sse_event({"a": "é"})
    assert event == 'data: {"a":"é"}\n\n'
    assert json.loads(event.removeprefix("data: ")) == {"a": "é"}
    assert SSE_DONE == "data: [DONE]\n\n"
