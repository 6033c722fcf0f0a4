"""tests/stream_check.py must refuse every stream Claude Code's SDK could not read, or that
breaks the protocol's order, and take Anthropic's own streams."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.stream_check import check_stream

START = {
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
}
DELTA = {
    "type": "message_delta",
    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
    "usage": {"output_tokens": 5},
}
STOP = {"type": "message_stop"}


def text_block(index: int, text: str = "hi") -> list[dict[str, Any]]:
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        },
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, *parts: str) -> list[dict[str, Any]]:
    start = {"type": "tool_use", "id": f"toolu_{index}", "name": "Read", "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *[
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in parts
        ],
        {"type": "content_block_stop", "index": index},
    ]


GOOD = [START, {"type": "ping"}, *text_block(0), *tool_block(1, '{"p": ', '"/a"}'), DELTA, STOP]


def test_a_good_stream_gives_the_sdk_message() -> None:
    message = check_stream(copy.deepcopy(GOOD))
    assert message.content[0].type == "text"
    assert message.content[1].input == {"p": "/a"}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 5


def test_anthropic_s_empty_partial_json_for_a_tool_without_input_is_fine() -> None:
    check_stream([START, *tool_block(0, ""), DELTA, STOP])


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([*text_block(0), DELTA, STOP], "the first event must be message_start"),
        ([START, *text_block(0), DELTA], "the last event must be message_stop"),
        ([START, *text_block(0), DELTA, STOP, STOP], "events after message_stop"),
        ([START, *text_block(0), STOP], "message_stop without message_delta"),
        ([START, *text_block(0), DELTA, DELTA, STOP], "a second message_delta"),
        ([START, START, *text_block(0), DELTA, STOP], "a second message_start"),
        ([START, *text_block(1), DELTA, STOP], "expected index 0"),
        ([START, *text_block(0), *text_block(0), DELTA, STOP], "expected index 1"),
        ([START, *text_block(0)[:2], *text_block(1), DELTA, STOP], "still open"),
        ([START, *text_block(0)[:2], DELTA, STOP], "still open"),
        ([START, *tool_block(0, '{"p": '), DELTA, STOP], "not JSON"),
        ([START, *tool_block(0, "[1]"), DELTA, STOP], "not a JSON object"),
        (
            [
                START,
                *text_block(0),
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "x"},
                },
                DELTA,
                STOP,
            ],
            "no block is open",
        ),
        (
            [
                START,
                *tool_block(0, "{}")[:1],
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "x"},
                },
                *tool_block(0, "{}")[1:],
                DELTA,
                STOP,
            ],
            "text_delta in a tool_use block",
        ),
    ],
)
def test_a_broken_stream_is_refused(events: list[dict[str, Any]], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_stream(copy.deepcopy(events))


def test_an_event_the_sdk_types_refuse_is_refused() -> None:
    bad = copy.deepcopy(GOOD)
    bad[-2] = {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}  # no usage
    with pytest.raises(Exception, match="usage"):
        check_stream(bad)
