"""anthropic_events_to_response and response_to_anthropic_events: assembly, replay, round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from anthropic.types import Message

from ccrelay_translate import (
    RAW_ARGUMENTS_KEY,
    OpenAIStreamTranslator,
    anthropic_events_to_response,
    openai_to_anthropic_response,
    response_to_anthropic_events,
)
from ccrelay_translate.errors import MalformedReply

from .samples import check_events, chunk, pieces, tool_delta, usage_chunk

FULL_RESPONSE: dict[str, Any] = {
    "id": "msg_01XYZ",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Plan: read then edit.", "signature": "EqQBsig=="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
        {"type": "text", "text": "Reading the file now."},
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "Read",
            "input": {"path": "/a.py", "n": [1, {"x": None}]},
        },
        {"type": "tool_use", "id": "toolu_2", "name": "TodoWrite", "input": {}},
        {"type": "text", "text": ""},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20480,
        "output_tokens": 95,
        "service_tier": "standard",
    },
}

# Anthropic's own stream for a short tool-use turn, as the API sends it (ping included).
ANTHROPIC_STREAM: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_01K2",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 849,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 10,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "I'll call"},
    },
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " it."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_01K", "name": "json", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"elements": [{"t": 58'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": "}]}"},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 849,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 47,
        },
    },
    {"type": "message_stop"},
]


def test_assemble_anthropic_stream() -> None:
    response = anthropic_events_to_response(ANTHROPIC_STREAM)
    assert response == {
        "id": "msg_01K2",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [
            {"type": "text", "text": "I'll call it."},
            {
                "type": "tool_use",
                "id": "toolu_01K",
                "name": "json",
                "input": {"elements": [{"t": 58}]},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 849,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 47,
        },
    }
    Message.model_validate(response)


def test_assemble_does_not_mutate_the_events() -> None:
    events = copy.deepcopy(ANTHROPIC_STREAM)
    anthropic_events_to_response(events)
    assert events == ANTHROPIC_STREAM


def test_assemble_accepts_any_iterable() -> None:
    assert anthropic_events_to_response(iter(ANTHROPIC_STREAM))["stop_reason"] == "tool_use"


def test_assemble_thinking_signature_and_citations() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "x",
        "document_index": 0,
        "start_char_index": 0,
        "end_char_index": 1,
    }
    events = [
        ANTHROPIC_STREAM[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Hm"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "m."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": "", "citations": None},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "citations_delta", "citation": citation},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "x"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
    response = anthropic_events_to_response(events)
    assert response["content"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "text", "text": "x", "citations": [citation]},
    ]
    # message_delta without input counts keeps message_start's
    assert response["usage"]["input_tokens"] == 849
    assert response["usage"]["output_tokens"] == 3


def test_assemble_stream_without_message_stop_keeps_what_came() -> None:
    response = anthropic_events_to_response(ANTHROPIC_STREAM[:4])
    assert response["content"] == [{"type": "text", "text": "I'll call"}]
    assert response["stop_reason"] is None


def test_assemble_unknown_event_types_are_skipped() -> None:
    events = [*ANTHROPIC_STREAM[:2], {"type": "future_event", "x": 1}, *ANTHROPIC_STREAM[2:]]
    assert anthropic_events_to_response(events) == anthropic_events_to_response(ANTHROPIC_STREAM)


def test_assemble_malformed_tool_json_is_kept_raw() -> None:
    events = [
        ANTHROPIC_STREAM[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
        },
        {"type": "content_block_stop", "index": 0},
    ]
    assert anthropic_events_to_response(events)["content"][0]["input"] == {
        RAW_ARGUMENTS_KEY: '{"a": '
    }


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "the stream has no message_start"),
        (
            [{"type": "content_block_start", "index": 0, "content_block": {}}],
            "content_block_start before message_start",
        ),
        (
            [
                ANTHROPIC_STREAM[0],
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ],
            "the stream carried an error: Overloaded",
        ),
        ([ANTHROPIC_STREAM[0], {"index": 0}], "a stream event without a type"),
        (
            [ANTHROPIC_STREAM[0], {"type": "content_block_delta", "index": 3, "delta": {}}],
            "content_block_delta for block 3, which was never started",
        ),
        (
            [ANTHROPIC_STREAM[0], {"type": "content_block_stop"}],
            "content_block_stop without an integer index",
        ),
        (
            [ANTHROPIC_STREAM[0], {"type": "content_block_start", "index": 0}],
            "content_block_start 0 carries no block",
        ),
        ([{"type": "message_start"}], "message_start carries no message"),
    ],
)
def test_assemble_garbage_raises_protocol_error(events: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(MalformedReply) as info:
        anthropic_events_to_response(events, backend="anthropic")
    assert info.value.message == message
    assert info.value.backend == "anthropic"


# -- replay ----------------------------------------------------------------------------------


def test_replay_events_are_valid_and_ordered() -> None:
    events = response_to_anthropic_events(FULL_RESPONSE)
    sdk = check_events(events)
    assert sdk["content"][0] == {
        "type": "thinking",
        "thinking": "Plan: read then edit.",
        "signature": "EqQBsig==",
    }
    assert sdk["content"][3]["input"] == {"path": "/a.py", "n": [1, {"x": None}]}
    assert [e["type"] for e in events[:4]] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    assert events[0]["message"]["usage"]["output_tokens"] == 0
    assert events[0]["message"]["usage"]["cache_read_input_tokens"] == 20480
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == FULL_RESPONSE["usage"]


def test_replay_exact_events_for_a_text_reply() -> None:
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    assert response_to_anthropic_events(response) == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 0},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
        {"type": "message_stop"},
    ]


def test_replay_does_not_mutate_the_response() -> None:
    response = copy.deepcopy(FULL_RESPONSE)
    events = response_to_anthropic_events(response)
    events[0]["message"]["usage"]["input_tokens"] = -1
    tool_start = next(e for e in events if e.get("content_block", {}).get("type") == "tool_use")
    tool_start["content_block"]["id"] = "poison"
    for event in events:
        if event.get("delta", {}).get("type") == "input_json_delta":
            event["delta"]["partial_json"] = "poison"
    assert response == FULL_RESPONSE


def test_round_trip_response_events_response() -> None:
    assert (
        anthropic_events_to_response(response_to_anthropic_events(FULL_RESPONSE)) == FULL_RESPONSE
    )


def test_round_trip_with_server_tool_blocks_and_extra_fields() -> None:
    response = {
        **FULL_RESPONSE,
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "q"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "u",
                        "title": "t",
                        "encrypted_content": "e",
                    }
                ],
            },
            {
                "type": "text",
                "text": "Done",
                "citations": [
                    {
                        "type": "web_search_result_location",
                        "url": "u",
                        "title": "t",
                        "cited_text": "c",
                        "encrypted_index": "i",
                    }
                ],
            },
        ],
        "stop_reason": "end_turn",
        "container": {"id": "container_1", "expires_at": "2030-01-01T00:00:00Z"},
    }
    events = response_to_anthropic_events(response)
    check_events(events)
    assert anthropic_events_to_response(events) == response


def test_round_trip_events_response_events() -> None:
    """Our translator's stream -> response -> replayed stream -> the same response."""
    translator = OpenAIStreamTranslator("claude-sonnet-4-5", message_id="msg_rt")
    events: list[dict[str, Any]] = []
    for item in [
        chunk({"content": "Let me run it."}),
        chunk(tool_delta(0, call_id="call_1", name="Bash", args="")),
        *[chunk(tool_delta(0, args=p)) for p in pieces('{"command": "pytest -q"}', 4)],
        chunk({}, finish_reason="tool_calls"),
        usage_chunk(500, 30, cached=256),
    ]:
        events += translator.feed(item)
    events += translator.finish()
    check_events(events)
    response = anthropic_events_to_response(events)
    assert response == {
        "id": "msg_rt",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Let me run it."},
            {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "pytest -q"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 244, "output_tokens": 30, "cache_read_input_tokens": 256},
    }
    replayed = response_to_anthropic_events(response)
    check_events(replayed)
    assert anthropic_events_to_response(replayed) == response


def test_stream_and_non_stream_translations_agree() -> None:
    """The same completion, streamed or not, gives the same Anthropic message."""
    non_streamed = openai_to_anthropic_response(
        {
            "id": "chatcmpl-same",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Two calls.",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "A", "arguments": '{"a": 1}'},
                            },
                            {
                                "id": "c2",
                                "type": "function",
                                "function": {"name": "B", "arguments": "{}"},
                            },
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": 40,
                "completion_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 32},
            },
        },
        model="claude-x",
    )
    translator = OpenAIStreamTranslator("claude-x")
    events: list[dict[str, Any]] = []
    for item in [
        chunk({"role": "assistant", "content": "Two "}, chunk_id="chatcmpl-same"),
        chunk({"content": "calls."}, chunk_id="chatcmpl-same"),
        chunk(tool_delta(0, call_id="c1", name="A", args='{"a": ')),
        chunk(tool_delta(0, args="1}")),
        chunk(tool_delta(1, call_id="c2", name="B", args="{}")),
        chunk({}, finish_reason="tool_calls"),
        {
            "id": "chatcmpl-same",
            "choices": [],
            "usage": {
                "prompt_tokens": 40,
                "completion_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 32},
            },
        },
    ]:
        events += translator.feed(item)
    events += translator.finish()
    check_events(events)
    streamed = anthropic_events_to_response(events)
    assert streamed["id"] != non_streamed["id"]  # each reply its own fresh id
    assert {**streamed, "id": None} == {**non_streamed, "id": None}
