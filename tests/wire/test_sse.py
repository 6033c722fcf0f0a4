"""ccrelay_wire.sse: the incremental decoder against every way a network can cut a stream, and the encoder."""

from __future__ import annotations

import json

import pytest

from ccrelay_wire.sse import ServerSentEvent, SSEDecoder, encode_sse

E = ServerSentEvent

ANTHROPIC = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_1"}}\n'
    "\n"
    "event: ping\n"
    'data: {"type": "ping"}\n'
    "\n"
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","delta":{"text":"héllo 😀 日本"}}\n'
    "\n"
).encode()

OPENROUTER = (
    ": OPENROUTER PROCESSING\n"
    "\n"
    'data: {"choices":[{"delta":{"content":"€uro"}}]}\n'
    "\n"
    ": keep-alive\n"
    "\n"
    "data: [DONE]\n"
    "\n"
).encode()

CRLF = (
    "event: a\r\ndata: one\r\n\r\ndata: two\r\ndata: lines\r\n\r\n:comment\r\ndata:ünï\r\n\r\n"
).encode()

CR_ONLY = "event: a\rdata: one\r\rdata: twö\r\r".encode()

MIXED = "\ufeffid: 7\r\nretry: 1500\ndata:first\rdata:  second\r\n\nevent:x\ndata\n\n".encode()

CASES = [
    (
        ANTHROPIC,
        [
            E("message_start", '{"type":"message_start","message":{"id":"msg_1"}}'),
            E("ping", '{"type": "ping"}'),
            E(
                "content_block_delta",
                '{"type":"content_block_delta","delta":{"text":"héllo 😀 日本"}}',
            ),
        ],
    ),
    (OPENROUTER, [E(None, '{"choices":[{"delta":{"content":"€uro"}}]}'), E(None, "[DONE]")]),
    (CRLF, [E("a", "one"), E(None, "two\nlines"), E(None, "ünï")]),
    (CR_ONLY, [E("a", "one"), E(None, "twö")]),
    (MIXED, [E(None, "first\n second", "7"), E("x", "", "7")]),
]


def decode(pieces: list[bytes]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.flush())
    return events, decoder


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_whole_stream(stream: bytes, expected: list[ServerSentEvent]) -> None:
    events, decoder = decode([stream])
    assert events == expected
    assert decoder.truncated is False


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_split_at_every_offset(stream: bytes, expected: list[ServerSentEvent]) -> None:
    for cut in range(len(stream) + 1):
        events, decoder = decode([stream[:cut], stream[cut:]])
        assert events == expected, f"cut at byte {cut}"
        assert decoder.truncated is False


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_one_byte_at_a_time(stream: bytes, expected: list[ServerSentEvent]) -> None:
    events, _ = decode([stream[i : i + 1] for i in range(len(stream))])
    assert events == expected


@pytest.mark.parametrize(("stream", "expected"), [CASES[2], CASES[4]])
def test_split_at_every_pair_of_offsets(stream: bytes, expected: list[ServerSentEvent]) -> None:
    for first in range(len(stream) + 1):
        for second in range(first, len(stream) + 1):
            pieces = [stream[:first], stream[first:second], stream[second:]]
            assert decode(pieces)[0] == expected, f"cuts at {first}, {second}"


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [E(None, "a")]
    assert decoder.feed(b"data: b\r") == []
    # a lone \r already ends the line; the \r of the blank line ends the event
    assert decoder.feed(b"\r") == [E(None, "b")]
    assert decoder.feed(b"\ndata: c\r\n\r\n") == [E(None, "c")]
    assert decoder.flush() == []
    assert decoder.truncated is False


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n") == []  # the \n of \r\n, not a blank line
    assert decoder.feed(b"\r") == [E(None, "x")]  # the blank line
    assert decoder.feed(b"\n") == []  # its \n: no second blank line
    assert decoder.feed(b"data: y\n\n") == [E(None, "y")]


def test_split_inside_a_utf8_character() -> None:
    payload = "data: 😀\n\n".encode()
    decoder = SSEDecoder()
    out = []
    for i in range(len(payload)):
        out += decoder.feed(payload[i : i + 1])
    assert out == [E(None, "😀")]


def test_bom_is_dropped_once_at_stream_start_only() -> None:
    stream = "\ufeffdata: 1\n\n\ufeffdata: 2\n\ndata: 3\n\n".encode()
    events, _ = decode([stream[:1], stream[1:2], stream[2:]])
    # the second BOM makes "\ufeffdata" an unknown field name: that event has no data
    assert events == [E(None, "1"), E(None, "3")]


def test_field_parsing_rules() -> None:
    stream = (
        b"data:no-space\n"
        b"data:  two spaces\n"
        b"data\n"
        b"data: colon: inside\n"
        b"unknown: ignored\n"
        b": a comment\n"
        b"event: kind\n"
        b"\n"
    )
    events, _ = decode([stream])
    assert events == [E("kind", "no-space\n two spaces\n\ncolon: inside")]


def test_event_type_resets_and_id_persists() -> None:
    stream = b"id: 1\nevent: first\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"
    events, _ = decode([stream])
    assert events == [E("first", "a", "1"), E(None, "b", "1"), E(None, "c", None)]


def test_id_with_nul_is_ignored() -> None:
    events, _ = decode([b"id: 5\ndata: a\n\nid: 6\x007\ndata: b\n\n"])
    assert [e.id for e in events] == ["5", "5"]


def test_event_without_data_is_not_dispatched() -> None:
    events, _ = decode([b"event: lonely\n\nid: 3\n\n\n\ndata: real\n\n"])
    assert events == [E(None, "real", "3")]  # the event type of the data-less block is reset


def test_retry_takes_ascii_digits_only() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 2500\n\n")
    assert decoder.retry == 2500
    decoder.feed(b"retry: 12a\n\nretry: \xef\xbc\x91\n\nretry:\n\n")  # fullwidth digit one
    assert decoder.retry == 2500


def test_invalid_utf8_becomes_replacement_character() -> None:
    events, _ = decode([b"data: a\xffb\n\n"])
    assert events == [E(None, "a\ufffdb")]


def test_flush_returns_an_unterminated_event_and_flags_it() -> None:
    events, decoder = decode([b"data: 1\n\ndata: [DONE]"])
    assert events == [E(None, "1"), E(None, "[DONE]")]
    assert decoder.truncated is True

    events, decoder = decode([b'data: {"half": \n'])
    assert events == [E(None, '{"half": ')]
    assert decoder.truncated is True


def test_flush_of_a_trailing_comment_is_not_an_event() -> None:
    events, decoder = decode([b"data: 1\n\n: keep-alive"])
    assert events == [E(None, "1")]
    assert decoder.truncated is True  # it still ended inside a line


def test_flush_with_a_partial_utf8_sequence() -> None:
    events, decoder = decode([b"data: caf\xc3"])
    assert events == [E(None, "caf\ufffd")]
    assert decoder.truncated is True


def test_decoder_is_reusable_after_flush() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: a\ndata: x")
    assert decoder.flush() == [E("a", "x")]
    assert decoder.feed("\ufeffdata: y\n\n".encode()) == [E(None, "y")]
    assert decoder.flush() == []
    assert decoder.truncated is False


def test_many_events_in_one_read() -> None:
    stream = b"".join(encode_sse(json.dumps({"n": n}), "tick") for n in range(500))
    decoder = SSEDecoder()
    events = decoder.feed(stream)
    assert [json.loads(e.data)["n"] for e in events] == list(range(500))
    assert {e.event for e in events} == {"tick"}


def test_a_long_line_fed_in_small_pieces() -> None:
    payload = "x" * 200_000
    stream = f"data: {payload}\n\n".encode()
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 7):
        events += decoder.feed(stream[i : i + 7])
    assert events == [E(None, payload)]


# -- encode_sse ---------------------------------------------------------------------------


def test_encode_with_event() -> None:
    assert encode_sse('{"type":"ping"}', "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encode_without_event() -> None:
    assert encode_sse("[DONE]") == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    "data", ["", "one", "two\nlines", "cr\rand\r\ncrlf", " leading space", "tail\n", "ü 😀"]
)
def test_encode_decode_round_trip(data: str) -> None:
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    events, decoder = decode([encode_sse(data, "e") + encode_sse(data)])
    assert events == [E("e", expected), E(None, expected)]
    assert decoder.truncated is False


def test_encode_rejects_a_line_break_in_the_event_name() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_sse("x", "bad\nname")
