"""Job input parsing: native and OpenAI-route shapes, field-naming errors, key material."""

from __future__ import annotations

import pytest

from ccrelay_handler.errors import InvalidInput
from ccrelay_handler.request import ChatJob, ModelsJob, parse_chat_request, parse_job_input

MESSAGES = [{"role": "user", "content": "hi"}]


def test_native_input() -> None:
    job = parse_job_input({"model": "m", "messages": MESSAGES, "stream": True})
    assert isinstance(job, ChatJob) and not job.openai_route
    assert job.request.stream and job.request.model == "m"


def test_openai_route_chat_and_models() -> None:
    job = parse_job_input(
        {"openai_route": "/v1/chat/completions", "openai_input": {"messages": MESSAGES}}
    )
    assert isinstance(job, ChatJob) and job.openai_route
    assert isinstance(parse_job_input({"openai_route": "/v1/models"}), ModelsJob)


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ("just text", "input"),
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": MESSAGES, "temperature": 9}, "temperature"),
        ({"messages": MESSAGES, "n": 2}, "n"),
        ({"messages": MESSAGES, "cache": {"mode": "sometimes"}}, "cache.mode"),
        ({"messages": MESSAGES, "cache": {"ttl": -1}}, "cache.ttl"),
        ({"openai_route": "/v1/completions", "openai_input": {}}, "openai_route"),
        ({"openai_route": "/v1/chat/completions"}, "openai_input"),
        (
            {"openai_route": "/v1/chat/completions", "openai_input": {"messages": "hi"}},
            "openai_input.messages",
        ),
    ],
)
def test_invalid_input_names_the_field(job_input: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_job_input(job_input)
    assert info.value.field == field
    assert str(info.value).startswith(f"invalid input: {field}: ")
    assert "Traceback" not in str(info.value)


def test_key_material_leaves_out_transport_fields() -> None:
    request = parse_chat_request(
        {
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": False},
            "user": "u1",
            "cache": {"mode": "no-cache", "ttl": 5},
            "temperature": 0.2,
            "parallel_tool_calls": False,
        }
    )
    material = request.key_material("qwen3-coder:30b")
    assert material == {
        "model": "qwen3-coder:30b",
        "messages": MESSAGES,
        "temperature": 0.2,
        "parallel_tool_calls": False,
    }


def test_engine_payload_asks_for_usage_and_drops_cache() -> None:
    request = parse_chat_request({"messages": MESSAGES, "cache": {"mode": "no-store"}})
    payload = request.engine_payload("m", stream=True)
    assert payload["stream"] is True
    assert payload["stream_options"] == {"include_usage": True}
    assert "cache" not in payload
    assert "stream_options" not in request.engine_payload("m", stream=False)


def test_include_usage_default_and_opt_out() -> None:
    assert parse_chat_request({"messages": MESSAGES}).include_usage
    opted_out = {"messages": MESSAGES, "stream_options": {"include_usage": False}}
    assert not parse_chat_request(opted_out).include_usage
