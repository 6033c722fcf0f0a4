"""Usage as Anthropic reports it, from every cache-count dialect (streamed and not), and
usage numbers no JSON writer could write (issue 25)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ccrelay_translate import OpenAIStreamTranslator, openai_to_anthropic_response
from ccrelay_translate.errors import MalformedReply
from tests.stream_check import check_stream

from .samples import chunk

CASES = [
    # OpenAI, vLLM, SGLang: cached_tokens inside prompt_tokens_details
    (
        {
            "prompt_tokens": 1000,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 800},
        },
        {"input_tokens": 200, "output_tokens": 7, "cache_read_input_tokens": 800},
    ),
    # OpenAI since openai-python 2.45: cache writes too
    (
        {
            "prompt_tokens": 1000,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 900},
        },
        {
            "input_tokens": 100,
            "output_tokens": 7,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 900,
        },
    ),
    # LiteLLM's wrapper: cache_creation_tokens in the details, Anthropic's names on top
    (
        {
            "prompt_tokens": 1000,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 600, "cache_creation_tokens": 300},
            "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 300,
        },
        {
            "input_tokens": 100,
            "output_tokens": 7,
            "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 300,
        },
    ),
    # a proxy with only the top-level Anthropic names
    (
        {"prompt_tokens": 50, "completion_tokens": 1, "cache_read_input_tokens": 40},
        {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 40},
    ),
    # DeepSeek: hit + miss = prompt
    (
        {
            "prompt_tokens": 500,
            "completion_tokens": 9,
            "prompt_cache_hit_tokens": 384,
            "prompt_cache_miss_tokens": 116,
        },
        {"input_tokens": 116, "output_tokens": 9, "cache_read_input_tokens": 384},
    ),
    # DeepSeek's halves without prompt_tokens
    (
        {"completion_tokens": 9, "prompt_cache_hit_tokens": 384, "prompt_cache_miss_tokens": 116},
        {"input_tokens": 116, "output_tokens": 9, "cache_read_input_tokens": 384},
    ),
    # Ollama: no cache fields, so none reported
    (
        {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        {"input_tokens": 12, "output_tokens": 3},
    ),
    # null details, as many servers send them
    (
        {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": None},
        {"input_tokens": 12, "output_tokens": 3},
    ),
]


def non_streamed(usage: dict[str, Any]) -> dict[str, Any]:
    reply = {
        "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    return openai_to_anthropic_response(reply, model="m", backend="deepseek")


def streamed(usage: dict[str, Any]) -> dict[str, Any]:
    translator = OpenAIStreamTranslator("m", backend="deepseek")
    events = translator.feed(chunk({"content": "ok"}))
    events += translator.feed(chunk({}, finish_reason="stop"))
    events += translator.feed({"choices": [], "usage": usage})
    events += translator.finish()
    return check_stream(events).model_dump(exclude_none=True)


@pytest.mark.parametrize(("usage", "expected"), CASES)
def test_cache_counts_as_anthropic_reports_them(
    usage: dict[str, Any], expected: dict[str, int]
) -> None:
    assert non_streamed(usage)["usage"] == expected
    assert streamed(usage)["usage"] == expected


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"prompt_tokens": 2**63, "completion_tokens": 1}, "usage.prompt_tokens is out of range"),
        ({"prompt_tokens": 10**30, "completion_tokens": 1}, "usage.prompt_tokens is out of range"),
        ({"prompt_tokens": 1e300, "completion_tokens": 1}, "usage.prompt_tokens is out of range"),
        ({"prompt_tokens": 3, "completion_tokens": -1}, "usage.completion_tokens is out of range"),
        (
            {"prompt_tokens": 3, "completion_tokens": 1.5},
            "usage.completion_tokens is not a whole number",
        ),
        (
            {"prompt_tokens": 3, "completion_tokens": float("nan")},
            "usage.completion_tokens is not a whole number",
        ),
        ({"prompt_tokens": True, "completion_tokens": 1}, "usage.prompt_tokens is not a number"),
        ({"prompt_tokens": "12", "completion_tokens": 1}, "usage.prompt_tokens is not a number"),
        (
            {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2**70}},
            "usage.prompt_tokens_details.cached_tokens is out of range",
        ),
        ({"prompt_cache_hit_tokens": -5}, "usage.prompt_cache_hit_tokens is out of range"),
    ],
)
def test_unwritable_usage_numbers_are_a_malformed_reply_naming_the_field(
    usage: dict[str, Any], message: str
) -> None:
    for translate in (non_streamed, streamed):
        with pytest.raises(MalformedReply) as info:
            translate(usage)
        assert info.value.message == message
        assert info.value.backend == "deepseek"
        assert str(10**30) not in info.value.message


def test_the_largest_writable_count_passes_and_encodes() -> None:
    usage = {"prompt_tokens": 2**63 - 1, "completion_tokens": 2.0}
    out = non_streamed(usage)["usage"]
    assert out == {"input_tokens": 2**63 - 1, "output_tokens": 2}
    orjson.dumps(out)
