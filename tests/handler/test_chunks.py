"""Streams fold into the completion the plain request returns, and replay back into chunks."""

from __future__ import annotations

import json

from ccrelay_handler.chunks import SSE_DONE, CompletionAssembler, replay_chunks, sse_event

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
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    chunks = replay_chunks(completion)
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 5
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi there"}
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert chunks[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[4]["choices"] == [] and chunks[4]["usage"]["total_tokens"] == 3
    assembler = CompletionAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.completion() == completion
    assert all("usage" not in c for c in replay_chunks(completion, include_usage=False))


def test_sse_framing() -> None:
    event = sse_event({"a": "é"})
    assert event == 'data: {"a":"é"}\n\n'
    assert json.loads(event.removeprefix("data: ")) == {"a": "é"}
    assert SSE_DONE == "data: [DONE]\n\n"
