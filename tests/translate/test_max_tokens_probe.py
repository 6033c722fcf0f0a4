"""Claude Code's ``max_tokens: 1`` probe (verify_api_key, the model check) against a reasoning
model, which spends its one token on reasoning: finish_reason ``length``, no content at all.

Anthropic answers such a turn with ``content: []`` and ``stop_reason: "max_tokens"`` (the
maintainers in anthropics/anthropic-sdk-typescript#399: "when that single token doesn't produce
visible text the content array comes back empty"), and the SDK's ``Message`` takes an empty
content list. The translation must give exactly that, never a blank text block (Anthropic
refuses an empty text block when the history is sent back) and never an error."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from ccrelay_translate import OpenAIStreamTranslator, openai_to_anthropic_response
from tests.stream_check import check_stream

from .samples import chunk, usage_chunk

EMPTY_MESSAGES: list[dict[str, Any]] = [
    {"role": "assistant", "content": None},
    {"role": "assistant", "content": ""},
    {"role": "assistant", "content": None, "reasoning": "The user"},  # vLLM, Ollama
    {"role": "assistant", "content": "", "reasoning_content": "Hmm", "tool_calls": []},  # DeepSeek
    {},
]


@pytest.mark.parametrize("message", EMPTY_MESSAGES)
def test_non_streamed_probe_is_an_empty_max_tokens_message(message: dict[str, Any]) -> None:
    reply = {
        "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1},
    }
    out = openai_to_anthropic_response(reply, model="claude-haiku-4-5")
    Message.model_validate(out)
    assert out["content"] == []
    assert out["stop_reason"] == "max_tokens"
    assert out["usage"] == {"input_tokens": 9, "output_tokens": 1}


@pytest.mark.parametrize(
    "deltas",
    [
        [{"role": "assistant", "content": ""}],
        [{"role": "assistant", "reasoning": "The"}],
        [{"role": "assistant", "reasoning_content": "Hm", "content": None}],
        [],
    ],
)
def test_streamed_probe_is_an_empty_max_tokens_message(deltas: list[dict[str, Any]]) -> None:
    translator = OpenAIStreamTranslator("claude-haiku-4-5")
    events = [e for d in deltas for e in translator.feed(chunk(d))]
    events += translator.feed(chunk({}, finish_reason="length"))
    events += translator.feed(usage_chunk(9, 1))
    events += translator.finish()
    message = check_stream(events)
    assert message.content == []
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 1
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
