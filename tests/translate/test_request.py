"""anthropic_to_openai_request: each rule on a small request, and every invalid shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccrelay_translate import anthropic_to_openai_request
from ccrelay_translate.errors import InvalidRequest

from .samples import PNG_B64


def translate(**fields: Any) -> dict[str, Any]:
    request = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    request.update(fields)
    return anthropic_to_openai_request(request, model="qwen-3-coder-480b")


def messages_of(*messages: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    return translate(messages=list(messages), **fields)["messages"]


# -- top level -------------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert translate() == {
        "model": "qwen-3-coder-480b",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
        "stream": False,
    }


def test_model_is_replaced_by_the_backend_model() -> None:
    body = anthropic_to_openai_request(
        {
            "model": "claude-opus-4-1",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
        model="llama-4",
    )
    assert body["model"] == "llama-4"


def test_input_request_is_not_mutated() -> None:
    request = {
        "model": "claude-x",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "defer_loading": True}],
        "stream": True,
    }
    before = json.dumps(request, sort_keys=True)
    anthropic_to_openai_request(request, model="m", max_tokens_limit=10)
    assert json.dumps(request, sort_keys=True) == before


@pytest.mark.parametrize(
    ("asked", "limit", "sent"), [(100, None, 100), (100, 50, 50), (20, 50, 20)]
)
def test_max_tokens_clamped_to_the_limit(asked: int, limit: int | None, sent: int) -> None:
    body = anthropic_to_openai_request(
        {"max_tokens": asked, "messages": [{"role": "user", "content": "x"}]},
        model="m",
        max_tokens_limit=limit,
    )
    assert body["max_tokens"] == sent
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize("value", [None, 0, -3, "100", True, 1.5])
def test_max_tokens_must_be_a_positive_integer(value: object) -> None:
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}]}
    if value is not None:
        request["max_tokens"] = value
    with pytest.raises(InvalidRequest, match="max_tokens: must be a positive integer"):
        anthropic_to_openai_request(request, model="m")


def test_sampling_parameters() -> None:
    body = translate(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["\n\nHuman:", "END"])
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\n\nHuman:", "END"]
    assert "top_k" not in body
    assert "stop_sequences" not in body


def test_empty_stop_sequences_are_left_out() -> None:
    assert "stop" not in translate(stop_sequences=[])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", "hot", "temperature: must be a number"),
        ("top_p", True, "top_p: must be a number"),
        ("stop_sequences", "END", "stop_sequences: must be a list of strings"),
        ("stop_sequences", ["a", 3], "stop_sequences: must be a list of strings"),
    ],
)
def test_invalid_sampling_parameters(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        translate(**{field: value})


@pytest.mark.parametrize(
    ("request_stream", "override", "include_usage", "stream", "options"),
    [
        (False, None, True, False, None),
        (True, None, True, True, {"include_usage": True}),
        (True, None, False, True, None),
        (False, True, True, True, {"include_usage": True}),
        (True, False, True, False, None),
    ],
)
def test_stream_override_and_usage_option(
    request_stream: bool,
    override: bool | None,
    include_usage: bool,
    stream: bool,
    options: dict[str, bool] | None,
) -> None:
    body = anthropic_to_openai_request(
        {"max_tokens": 9, "stream": request_stream, "messages": [{"role": "user", "content": "x"}]},
        model="m",
        stream=override,
        include_usage=include_usage,
    )
    assert body["stream"] is stream
    assert body.get("stream_options") == options


def test_anthropic_only_fields_are_dropped() -> None:
    body = translate(
        thinking={"type": "enabled", "budget_tokens": 1024},
        context_management={"edits": []},
        output_config={"effort": "low"},
        metadata={"user_id": "u"},
        service_tier="auto",
        container="c",
        mcp_servers=[],
        anthropic_beta=["x"],
        betas=["y"],
        something_new={"a": 1},
    )
    assert set(body) == {"model", "messages", "max_tokens", "stream"}


# -- system ----------------------------------------------------------------------------------


def test_system_string() -> None:
    assert messages_of({"role": "user", "content": "x"}, system="Be brief.")[0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_system_blocks_become_one_message_joined_by_blank_lines() -> None:
    system = [
        {"type": "text", "text": "First.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": ""},
        {"type": "text", "text": "Second."},
    ]
    out = messages_of({"role": "user", "content": "x"}, system=system)
    assert out[0] == {"role": "system", "content": "First.\n\nSecond."}
    assert out[1] == {"role": "user", "content": "x"}


def test_empty_system_is_left_out() -> None:
    assert messages_of({"role": "user", "content": "x"}, system=[]) == [
        {"role": "user", "content": "x"}
    ]


def test_system_role_messages_become_reminders_in_the_user_turn_at_their_place() -> None:
    """One leading system message only (Ollama's qwen3-coder template keeps the first alone);
    the others keep their text, as reminders, without changing the prompt's prefix."""
    out = messages_of(
        {"role": "user", "content": "a"},
        {"role": "system", "content": [{"type": "text", "text": "Mode: plan"}]},
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": "Mode: act"},
        {"role": "user", "content": "c"},
        system="top",
    )
    assert [(m["role"], m["content"]) for m in out] == [
        ("system", "top"),
        ("user", "a\n\n<system-reminder>\nMode: plan\n</system-reminder>"),
        ("assistant", "b"),
        ("user", "<system-reminder>\nMode: act\n</system-reminder>\n\nc"),
    ]


def test_a_leading_system_message_without_a_top_level_system_stays_the_system() -> None:
    out = messages_of(
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    )
    assert out == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_system_with_a_non_text_block_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match=r"system\[0\]: system content must be text"):
        translate(system=[{"type": "image", "source": {}}])


# -- user content ----------------------------------------------------------------------------


def test_user_text_blocks_become_one_string() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>r</system-reminder>"},
                {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "question", "citations": None},
            ],
        }
    )
    assert out == [{"role": "user", "content": "<system-reminder>r</system-reminder>\n\nquestion"}]


def test_user_image_base64_and_url() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
            ],
        }
    )
    assert out == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "base64", "data": "x"}, 'needs "media_type" and "data"'),
        ({"type": "url"}, 'a url image needs a "url"'),
        (None, 'image block needs a "source"'),
    ],
)
def test_bad_image_sources(source: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        messages_of({"role": "user", "content": [{"type": "image", "source": source}]})
    assert info.value.message.startswith("messages[0].content[0]")


def test_text_document_becomes_text_with_its_title() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "title": "notes.txt",
                    "source": {"type": "text", "media_type": "text/plain", "data": "line 1"},
                    "citations": {"enabled": True},
                },
                {"type": "text", "text": "Summarise"},
            ],
        }
    )
    assert out == [{"role": "user", "content": "notes.txt\n\nline 1\n\nSummarise"}]


def test_content_document_becomes_its_blocks() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "source": {"type": "content", "content": [{"type": "text", "text": "part"}]},
                }
            ],
        }
    )
    assert out == [{"role": "user", "content": "part"}]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},  # no PDF
        {"type": "url", "url": "https://x.test/a.pdf"},
        {"type": "file", "file_id": "file_1"},
    ],
)
def test_documents_a_backend_cannot_take_become_a_note_never_an_error(
    source: dict[str, Any],
) -> None:
    """A refused block would stay in the history and fail every later turn too."""
    out = messages_of({"role": "user", "content": [{"type": "document", "source": source}]})
    (message,) = out
    assert message["role"] == "user"
    assert message["content"].startswith("[") and "left out" in message["content"]


def test_search_result_block_becomes_text() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {
                    "type": "search_result",
                    "title": "Doc",
                    "source": "https://x.test",
                    "content": [{"type": "text", "text": "found"}],
                }
            ],
        }
    )
    assert out == [{"role": "user", "content": "Doc\n\nhttps://x.test\n\nfound"}]


# -- tool results ----------------------------------------------------------------------------


def test_tool_results_come_first_in_order_then_the_rest_of_the_turn() -> None:
    out = messages_of(
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "a", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "b", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                {"type": "text", "text": "between"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "two"},
            ],
        },
    )
    assert out[2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "two"},
        {"role": "user", "content": "before\n\nbetween"},
    ]


def test_tool_result_only_turn_has_no_user_message() -> None:
    out = messages_of(
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "a", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
    )
    assert out[-1] == {"role": "tool", "tool_call_id": "t", "content": "ok"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ([], ""),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\n\nb"),
        (
            [{"type": "tool_reference", "tool_name": "mcp__github__search_code"}],
            "Tool loaded: mcp__github__search_code",
        ),
        (
            [{"type": "document", "source": {"type": "text", "data": "doc body"}}],
            "doc body",
        ),
    ],
)
def test_tool_result_content_shapes(content: object, expected: str) -> None:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": "t"}
    if content is not None:
        block["content"] = content
    assert messages_of({"role": "user", "content": [block]}) == [
        {"role": "tool", "tool_call_id": "t", "content": expected}
    ]


@pytest.mark.parametrize(("content", "expected"), [("boom", "Error: boom"), ("", "Error")])
def test_tool_result_error_is_marked(content: str, expected: str) -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": content, "is_error": True}
            ],
        }
    )
    assert out == [{"role": "tool", "tool_call_id": "t", "content": expected}]


def test_tool_result_is_error_false_is_not_marked() -> None:
    out = messages_of(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "fine", "is_error": False}
            ],
        }
    )
    assert out[0]["content"] == "fine"


def test_tool_result_images_move_to_the_following_user_message() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "QQ=="},
    }
    out = messages_of(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "shot"}, image],
                },
                {"type": "tool_result", "tool_use_id": "t2", "content": "plain"},
                {"type": "text", "text": "what do you see?"},
            ],
        }
    )
    assert out == [
        {
            "role": "tool",
            "tool_call_id": "t1",
            "content": "shot\n\n(1 image(s) attached in the next user message)",
        },
        {"role": "tool", "tool_call_id": "t2", "content": "plain"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Images from tool call t1:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ=="}},
                {"type": "text", "text": "what do you see?"},
            ],
        },
    ]


# -- assistant content -----------------------------------------------------------------------


def test_assistant_text_and_tool_calls() -> None:
    out = messages_of(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Read",
                    "input": {"path": "/a b/ü.py", "n": [1, 2]},
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "And more."},
            ],
        },
    )
    assert out[1] == {
        "role": "assistant",
        "content": "Let me look.\n\nAnd more.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"path":"/a b/ü.py","n":[1,2]}'},
            }
        ],
    }


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    out = messages_of(
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "a"}]},
    )
    assert out[1]["content"] is None
    assert out[1]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_assistant_with_only_thinking_is_an_empty_message() -> None:
    out = messages_of(
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "zz"}]},
    )
    assert out[1] == {"role": "assistant", "content": ""}


def test_assistant_string_content_and_prefill() -> None:
    out = messages_of({"role": "user", "content": "x"}, {"role": "assistant", "content": "{"})
    assert out[-1] == {"role": "assistant", "content": "{"}


def test_server_tool_blocks_are_dropped() -> None:
    out = messages_of(
        {"role": "user", "content": "search"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "q"},
                },
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "mcp_tool_use", "id": "m", "name": "x", "server_name": "s", "input": {}},
                {"type": "mcp_tool_result", "tool_use_id": "m", "content": []},
                {"type": "text", "text": "Found it."},
            ],
        },
    )
    assert out[1] == {"role": "assistant", "content": "Found it."}


# -- invalid shapes name their path ----------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hi", "messages: must be a list of messages"),
        ([], "messages: must hold at least one message"),
        (["hi"], "messages[0]: a message must be an object"),
        ([{"role": "tool", "content": "x"}], "messages[0].role: unknown role 'tool'"),
        ([{"content": "x"}], "messages[0].role: unknown role None"),
        ([{"role": "user", "content": 5}], "messages[0].content: must be a string or a list"),
        (
            [{"role": "user", "content": ["x"]}],
            r"messages[0].content[0]: a content block must be an object",
        ),
        (
            [{"role": "user", "content": [{"text": "x"}]}],
            'messages[0].content[0]: content block needs a "type"',
        ),
        (
            [{"role": "user", "content": [{"type": "text"}]}],
            'messages[0].content[0]: text block needs a "text" string',
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]},
            ],
            "messages[1].content[1]: unsupported content block type 'video' in a user message",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "tool_use", "name": "a", "input": {}}]},
            ],
            'messages[1].content[0]: tool_use block needs an "id"',
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
            ],
            'messages[1].content[0]: tool_use block needs a "name"',
        ),
        (
            [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "a", "input": "{}"}],
                },
            ],
            'messages[1].content[0]: tool_use "input" must be an object',
        ),
        (
            [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
            'messages[0].content[0]: tool_result block needs a "tool_use_id"',
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "t", "name": "a", "input": {}}],
                }
            ],
            "messages[0].content[0]: a tool_use block belongs in an assistant message, not in a user message",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ],
            "messages[1].content[0]: a tool_result block belongs in a user message",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "image", "source": {}}]},
            ],
            "messages[1].content[0]: unsupported content block type 'image' in an assistant message",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "tool_use"}],
                        }
                    ],
                }
            ],
            "messages[0].content[0].content[0]: a tool_use block belongs in an assistant message, not in a tool result",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": 7}],
                }
            ],
            "messages[0].content[0].content: must be a string or a list",
        ),
    ],
)
def test_invalid_messages_name_the_path(messages: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_to_openai_request({"max_tokens": 5, "messages": messages}, model="m")
    assert info.value.message.startswith(message)
    assert info.value.fault == "caller"


def test_request_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="request: must be a JSON object"):
        anthropic_to_openai_request([], model="m")  # type: ignore[arg-type]


# -- tools -----------------------------------------------------------------------------------


def test_tools_become_functions_and_lose_anthropic_fields() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    body = translate(
        tools=[
            {
                "name": "search",
                "description": "Search things",
                "input_schema": schema,
                "cache_control": {"type": "ephemeral"},
                "defer_loading": True,
                "strict": True,
                "input_examples": [{"q": "x"}],
            },
            {"type": "custom", "name": "noschema"},
        ]
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "search", "description": "Search things", "parameters": schema},
        },
        {
            "type": "function",
            "function": {"name": "noschema", "parameters": {"type": "object", "properties": {}}},
        },
    ]


def test_server_tools_are_dropped_without_error() -> None:
    body = translate(
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"name": "mine", "input_schema": {"type": "object"}},
        ]
    )
    assert [t["function"]["name"] for t in body["tools"]] == ["mine"]


def test_only_server_tools_means_no_tools_and_no_tool_choice() -> None:
    body = translate(
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        (
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            {"type": "function", "function": {"name": "f"}},
            False,
        ),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: object, parallel: bool | None) -> None:
    body = translate(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=choice)
    assert body["tool_choice"] == expected
    assert body.get("parallel_tool_calls", None) is parallel


def test_tool_choice_naming_a_dropped_server_tool_falls_back_to_default() -> None:
    body = translate(
        tools=[{"name": "f"}, {"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "tool", "name": "web_search"},
    )
    assert "tool_choice" not in body
    assert len(body["tools"]) == 1


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        ("f", None, "tools: must be a list of tools"),
        (["f"], None, r"tools\[0\]: a tool must be an object"),
        ([{"description": "x"}], None, r'tools\[0\]: tool needs a "name"'),
        (
            [{"name": "f", "input_schema": "{}"}],
            None,
            r"tools\[0\].input_schema: must be a JSON schema",
        ),
        ([{"name": "f"}], {"type": "tool", "name": "g"}, "tool_choice: no tool named 'g'"),
        ([{"name": "f"}], {"type": "tool"}, 'tool_choice: type "tool" needs a "name"'),
        ([{"name": "f"}], {"type": "sometimes"}, "tool_choice.type: unknown 'sometimes'"),
        ([{"name": "f"}], "auto", "tool_choice: must be an object"),
    ],
)
def test_invalid_tools(tools: object, choice: object, message: str) -> None:
    fields: dict[str, Any] = {"tools": tools}
    if choice is not None:
        fields["tool_choice"] = choice
    with pytest.raises(InvalidRequest, match=message):
        translate(**fields)
