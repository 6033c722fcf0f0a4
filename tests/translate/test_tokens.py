"""estimate_tokens: a calibrated estimate that errs high (see ccrelay_translate.tokens)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ccrelay_translate import IMAGE_TOKENS, estimate_tokens, tokens
from ccrelay_translate.errors import InvalidRequest
from ccrelay_translate.tokens import FRAMING_TOKENS, estimate_text, tokens_ceiling

from .samples import PNG_B64, claude_code_request

REPO = Path(__file__).resolve().parents[3]


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1, "messages": [], **fields}


def user(content: Any) -> dict[str, Any]:
    return request(messages=[{"role": "user", "content": content}])


def test_empty_request_is_zero() -> None:
    assert estimate_tokens(request()) == 0


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("abcd", 1.0),  # letters, digits and spaces: 4 a token
        ("ab cd efgh", 2.5),
        ('{"a":1}', 5 / 1.6 + 2 / 4),  # JSON syntax: 1.6 a token
        ("函数", 2.0),  # every non-ASCII character: a token
        ("é1", 1.25),
        ("", 0.0),
    ],
)
def test_the_character_classes(text: str, tokens: float) -> None:
    assert estimate_text(text) == pytest.approx(tokens)


def test_a_message_costs_its_text_plus_the_template_framing() -> None:
    assert estimate_tokens(user("x" * 400)) == 100 + FRAMING_TOKENS
    assert estimate_tokens(user("x" * 401)) == 101 + FRAMING_TOKENS


def test_system_string_and_blocks() -> None:
    assert estimate_tokens(request(system="y" * 40)) == 10
    blocks = [{"type": "text", "text": "y" * 20, "cache_control": {"type": "ephemeral"}}] * 2
    assert estimate_tokens(request(system=blocks)) == 10


def test_every_kind_of_content_counts() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "a" * 8}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "b" * 8, "signature": "not counted" * 50},
                {"type": "tool_use", "id": "t", "name": "Read", "input": {"p": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "c" * 8},
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "text", "text": "d" * 8}],
                },
                {"type": "document", "title": "T", "source": {"type": "text", "data": "e" * 7}},
                {
                    "type": "search_result",
                    "title": "S",
                    "source": "u",
                    "content": [{"type": "text", "text": "f" * 7}],
                },
            ],
        },
    ]
    texts = ["a" * 8, "b" * 8, "Read", '{"p":1}', "c" * 8, "d" * 8, "T", "e" * 7, "S", "f" * 7]
    expected = math.ceil(sum(estimate_text(t) for t in texts)) + 3 * FRAMING_TOKENS
    assert estimate_tokens(request(messages=messages)) == expected


def test_images_cost_a_flat_amount_and_a_pdf_its_size() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64 * 1000},
    }
    nested = {"type": "tool_result", "tool_use_id": "t", "content": [image]}
    assert estimate_tokens(user([image, nested])) == 2 * IMAGE_TOKENS + FRAMING_TOKENS
    big_pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "J" * 40_000},
    }
    assert estimate_tokens(user([big_pdf])) == 10_000 + FRAMING_TOKENS  # 30 kB of PDF / 3


def test_tools_count_name_description_schema_and_framing() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    tools = [{"name": "search", "description": "Find it", "input_schema": schema}]
    # the schemas are counted as one JSON list (two brackets more)
    texts = ["search", "Find it", json.dumps([schema], separators=(",", ":"))]
    expected = math.ceil(sum(estimate_text(t) for t in texts)) + FRAMING_TOKENS
    assert estimate_tokens(request(tools=tools)) == expected


def test_it_is_never_under_a_plain_four_characters_a_token() -> None:
    """The old estimate under-counted code (3.4-3.9 chars/token in Qwen's BPE); this one is
    always at least as high on Claude Code's request and on this repository's code."""
    body = claude_code_request()
    assert estimate_tokens(body) >= len(json.dumps(body)) / 4 * 0.5
    for path in sorted((REPO / "client" / "ccrelay").rglob("*.py"))[:20]:
        text = path.read_text()
        assert estimate_text(text) >= len(text) / 4


def test_odd_shapes_are_skipped_not_fatal() -> None:
    odd = request(
        system=5,
        messages=["x", {"role": "user", "content": [7, {"type": "text"}, {"no": "type"}]}],
        tools="none",
    )
    assert estimate_tokens(odd) == FRAMING_TOKENS  # the one message object


def test_more_text_means_more_tokens() -> None:
    assert estimate_tokens(user("word " * 1000)) > 50 * (
        estimate_tokens(user("word " * 10)) - FRAMING_TOKENS
    )


def test_request_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        estimate_tokens("hello")  # type: ignore[arg-type]


SCHEMA = {"type": "object", "properties": {"path": {"description": "\u201cA\u201d path"}}}
MIXED_TEXTS = [
    "You are Claude Code \u2014 a CLI. " * 60,  # long, with a dash (UTF-8 to count)
    "Fix it \U0001f916",  # short and not ASCII
    "plain words " * 100,  # ASCII
    "\u51fd\u6570 " * 400,  # long, CJK
    "Read",
    "Reads a file \u2192 its lines. " * 40,
    json.dumps([SCHEMA], ensure_ascii=False, separators=(",", ":")),
]


def mixed_request() -> dict[str, Any]:
    """Long and short texts, ASCII and not, as Claude Code's are (dashes, arrows, quotes)."""
    system, short, plain, cjk, name, description, _ = MIXED_TEXTS
    messages = [
        {"role": "user", "content": short},
        {"role": "assistant", "content": [{"type": "text", "text": plain}]},
        {"role": "user", "content": [{"type": "text", "text": cjk}]},
    ]
    tools = [{"name": name, "description": description, "input_schema": SCHEMA}]
    return request(system=system, messages=messages, tools=tools)


def test_texts_counted_apart_add_up_to_the_texts_counted_together() -> None:
    """ASCII texts, short others and long others are counted in separate passes (the long
    ones kept): the estimate is still that of every text joined, to the token."""
    expected = math.ceil(estimate_text("".join(MIXED_TEXTS))) + 4 * FRAMING_TOKENS
    assert estimate_tokens(mixed_request()) == expected
    assert estimate_tokens(mixed_request()) == expected  # again, from the kept counts


def test_kept_counts_are_keyed_by_the_text_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "KEPT_CHARACTERS", 3000)
    monkeypatch.setattr(tokens, "_kept", {})
    monkeypatch.setattr(tokens, "_kept_characters", 0)
    dashes = "\u2014" * 1000  # 1000 non-ASCII characters: 1000 tokens
    letters = "\u2014" + "a" * 999  # as long, mostly letters: 1 + 999 / 4
    assert estimate_tokens(user(dashes)) == 1000 + FRAMING_TOKENS
    assert estimate_tokens(user(letters)) == math.ceil(1 + 999 / 4) + FRAMING_TOKENS
    for n in range(10):
        estimate_tokens(user(f"{n}\u2014" + "b" * 998))
    assert sum(map(len, tokens._kept)) <= 3000  # the oldest went first
    assert dashes not in tokens._kept
    assert estimate_tokens(user(dashes)) == 1000 + FRAMING_TOKENS  # counted again


@pytest.mark.parametrize(
    "body",
    [
        request(),
        mixed_request(),
        claude_code_request(),
        user([{"type": "image", "source": {"type": "base64", "data": PNG_B64}}]),
        user("{}[]\n" * 500),  # punctuation: 1.6 characters a token, the dearest ASCII
        user("\U0001f916" * 300),
    ],
)
def test_the_ceiling_is_never_under_the_estimate(body: dict[str, Any]) -> None:
    assert tokens_ceiling(body) >= estimate_tokens(body)
