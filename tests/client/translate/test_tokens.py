"""estimate_tokens: characters / 4 over every text the model reads, images a flat cost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccrelay.errors import InvalidRequestError
from ccrelay.translate import IMAGE_TOKENS, estimate_tokens

from .samples import PNG_B64


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1, "messages": [], **fields}


def test_empty_request_is_zero() -> None:
    assert estimate_tokens(request()) == 0


@pytest.mark.parametrize(("chars", "tokens"), [(1, 1), (4, 1), (5, 2), (400, 100), (401, 101)])
def test_characters_over_four_rounded_up(chars: int, tokens: int) -> None:
    assert estimate_tokens(request(messages=[{"role": "user", "content": "x" * chars}])) == tokens


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
    chars = 8 + 8 + len("Read") + len('{"p":1}') + 8 + 8 + 1 + 7 + 1 + 7
    assert estimate_tokens(request(messages=messages)) == -(-chars // 4)


def test_images_and_binary_documents_cost_a_flat_amount() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64 * 1000},
    }
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "J" * 10_000},
    }
    nested = {"type": "tool_result", "tool_use_id": "t", "content": [image]}
    messages = [{"role": "user", "content": [image, pdf, nested]}]
    assert estimate_tokens(request(messages=messages)) == 3 * IMAGE_TOKENS


def test_tools_count_name_description_and_schema() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    tools = [
        {
            "name": "search",
            "description": "Find it",
            "input_schema": schema,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    chars = len("search") + len("Find it") + len(json.dumps(schema, separators=(",", ":")))
    assert estimate_tokens(request(tools=tools)) == -(-chars // 4)


def test_odd_shapes_are_skipped_not_fatal() -> None:
    odd = request(
        system=5,
        messages=["x", {"role": "user", "content": [7, {"type": "text"}, {"no": "type"}]}],
        tools="none",
    )
    assert estimate_tokens(odd) == 0


def test_more_text_means_more_tokens() -> None:
    small = request(messages=[{"role": "user", "content": "word " * 10}])
    large = request(messages=[{"role": "user", "content": "word " * 1000}])
    assert estimate_tokens(large) > 50 * estimate_tokens(small) > 0


def test_request_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError):
        estimate_tokens("hello")  # type: ignore[arg-type]
