"""What the history carries to the upstream: the billing header wherever system text has it,
and the assistant turns' thinking where the backend reads it."""

from __future__ import annotations

from typing import Any

import pytest

from ccrelay_translate import anthropic_to_openai_request
from ccrelay_translate.capabilities import Accepts, Capabilities

BILLING = "x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=sdk-cli;"


def translate(caps: Capabilities | None = None, **fields: Any) -> list[dict[str, Any]]:
    request = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **fields}
    return anthropic_to_openai_request(request, model="m", caps=caps)["messages"]


# -- 6. the billing header -----------------------------------------------------------------


@pytest.mark.parametrize(
    "system",
    [
        f"{BILLING}\nYou are Claude Code.",
        f"{BILLING}\n\nYou are Claude Code.",
        [{"type": "text", "text": BILLING}, {"type": "text", "text": "You are Claude Code."}],
        [{"type": "text", "text": f"{BILLING}\nYou are Claude Code."}],
    ],
)
def test_the_billing_header_goes_from_any_top_level_system(system: object) -> None:
    assert translate(system=system)[0] == {"role": "system", "content": "You are Claude Code."}


def test_a_system_string_that_is_only_the_header_leaves_no_system_message() -> None:
    assert translate(system=BILLING) == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "content",
    [
        f"{BILLING}\n# Environment\ncwd: /repo",
        [{"type": "text", "text": BILLING}, {"type": "text", "text": "# Environment\ncwd: /repo"}],
    ],
)
def test_the_billing_header_goes_from_inline_system_messages(content: object) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": content},
    ]
    sent = translate(system="S", messages=messages)
    assert "billing" not in str(sent)
    assert sent[-1]["content"].endswith(
        "<system-reminder>\n# Environment\ncwd: /repo\n</system-reminder>"
    )


def test_a_leading_inline_system_message_loses_the_header_too() -> None:
    messages = [{"role": "system", "content": f"{BILLING}\nS"}, {"role": "user", "content": "hi"}]
    assert translate(messages=messages)[0] == {"role": "system", "content": "S"}


def test_the_header_mentioned_further_on_or_in_a_user_turn_stays() -> None:
    mention = f"Explain this:\n{BILLING}"
    sent = translate(system=mention, messages=[{"role": "user", "content": BILLING}])
    assert sent == [{"role": "system", "content": mention}, {"role": "user", "content": BILLING}]


def test_keep_billing_keeps_it() -> None:
    request = {"max_tokens": 10, "system": BILLING, "messages": [{"role": "user", "content": "x"}]}
    body = anthropic_to_openai_request(request, model="m", keep_billing=True)
    assert body["messages"][0]["content"] == BILLING


# -- 8. thinking in the history ------------------------------------------------------------

HISTORY = [
    {"role": "user", "content": "fix it"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Look at the test.", "signature": "EqQBCkYI..."},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy..."},
            {"type": "thinking", "thinking": "Then run it.", "signature": "sig2"},
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "/t.py"}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
    },
    {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "",
                "signature": "ccrelay-unsigned",
            },  # omitted display
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"c": "pytest"}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}],
    },
    {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
]


def assistants(field: str) -> list[dict[str, Any]]:
    caps = Accepts(reasoning_history=field).capabilities("m")  # type: ignore[arg-type]
    return [m for m in translate(caps, messages=HISTORY) if m["role"] == "assistant"]


def test_thinking_goes_as_reasoning_for_vllm_and_ollama() -> None:
    first, second, third = assistants("reasoning")
    assert first["reasoning"] == "Look at the test.\n\nThen run it."
    assert "reasoning" not in second and "reasoning" not in third  # nothing to send
    assert all("reasoning_content" not in m for m in (first, second, third))
    assert "EqQB" not in str(first) and "EmwK" not in str(first)  # signatures, redacted: never


def test_thinking_goes_as_reasoning_content_for_deepseek_even_empty_on_tool_turns() -> None:
    first, second, third = assistants("reasoning_content")
    assert first["reasoning_content"] == "Look at the test.\n\nThen run it."
    assert second["reasoning_content"] == ""  # DeepSeek refuses a tool-call turn without it
    assert "reasoning_content" not in third


def test_thinking_is_dropped_by_default() -> None:
    assert Accepts().reasoning_history == "off"
    for message in translate(messages=HISTORY):
        assert "reasoning" not in message and "reasoning_content" not in message


@pytest.mark.parametrize("value", [False, None, "off"])
def test_yaml_off_means_off(value: object) -> None:
    assert Accepts.model_validate({"reasoning_history": value}).reasoning_history == "off"


def test_an_unknown_field_name_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="reasoning_history"):
        Accepts.model_validate({"reasoning_history": "thoughts"})
