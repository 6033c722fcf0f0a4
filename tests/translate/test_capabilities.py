"""Shaping a request to what a backend takes: efforts, stops, schemas, PDFs (issue 11)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from ccrelay_translate import anthropic_to_openai_request
from ccrelay_translate.capabilities import Accepts, Capabilities
from ccrelay_translate.documents import DocumentTexts, extract_pdf_text
from ccrelay_translate.request import reasoning_effort, thinking_display
from ccrelay_translate.tools import strip_keywords
from tests.pdf_samples import make_pdf


def body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "accepted", "expected"),
    [
        ({"output_config": {"effort": "high"}}, ("low", "medium", "high"), "high"),
        ({"output_config": {"effort": "max"}}, ("low", "medium", "high"), "high"),
        ({"output_config": {"effort": "medium"}}, ("low", "high"), "low"),  # nearest, ties low
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}},
            ("low", "medium", "high"),
            "low",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 32000}},
            ("low", "medium", "high"),
            "high",
        ),
        ({"thinking": {"type": "adaptive"}}, ("low", "medium", "high"), "medium"),
        ({"thinking": {"type": "adaptive"}}, (), None),  # the backend takes none: never sent
        ({}, ("low", "medium", "high"), None),  # thinking not asked for
        ({"thinking": {"type": "disabled"}}, ("low",), None),
    ],
)
def test_reasoning_effort_is_the_nearest_value_the_backend_takes(
    fields: dict[str, Any], accepted: tuple[str, ...], expected: str | None
) -> None:
    assert reasoning_effort(body(**fields), accepted) == expected


@pytest.mark.parametrize(
    ("thinking", "display"),
    [
        (None, "none"),
        ({"type": "disabled"}, "none"),
        ({"type": "enabled", "budget_tokens": 2000}, "summarized"),
        ({"type": "adaptive", "display": "omitted"}, "omitted"),  # what Claude Code sends
        ({"type": "adaptive", "display": "summarized"}, "summarized"),
    ],
)
def test_thinking_display_follows_anthropic(thinking: dict[str, Any] | None, display: str) -> None:
    request = body() if thinking is None else body(thinking=thinking)
    assert thinking_display(request) == display


def test_more_than_four_stops_are_cut_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccrelay.translate")
    sent = anthropic_to_openai_request(body(stop_sequences=list("abcdef")), model="m")
    assert sent["stop"] == ["a", "b", "c", "d"]
    assert "6 given, the backend takes 4" in caplog.text


def test_output_config_format_becomes_response_format_where_supported() -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    request = body(output_config={"format": {"type": "json_schema", "schema": schema}})
    sent = anthropic_to_openai_request(request, model="m")
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    off = anthropic_to_openai_request(
        request, model="m", caps=Capabilities(structured_output=False)
    )
    assert "response_format" not in off


def test_keywords_go_at_every_depth_and_property_names_stay() -> None:
    schema = {
        "type": "object",
        "properties": {
            "format": {"type": "string", "format": "date"},
            "items": {"type": "array", "items": {"type": "string", "pattern": "^a"}, "minItems": 1},
            "choice": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
        },
        "$defs": {"x": {"type": "string", "minLength": 2}},
    }
    out = strip_keywords(
        schema, frozenset({"format", "pattern", "minItems", "maxLength", "minLength"})
    )
    assert set(out["properties"]) == {"format", "items", "choice"}
    assert out["properties"]["format"] == {"type": "string"}
    assert out["properties"]["items"] == {"type": "array", "items": {"type": "string"}}
    assert out["properties"]["choice"]["anyOf"][0] == {"type": "string"}
    assert out["$defs"]["x"] == {"type": "string"}
    assert schema["properties"]["format"]["format"] == "date"  # the input is untouched


def test_accepts_gives_efforts_only_for_its_reasoning_models() -> None:
    accepts = Accepts(reasoning_efforts=["low", "high"], reasoning_models=["gpt-oss*"])
    assert accepts.capabilities("gpt-oss-120b").reasoning_efforts == ("low", "high")
    assert accepts.capabilities("qwen-3.8-27b").reasoning_efforts == ()


def test_a_pdf_s_text_is_capped_and_says_what_was_cut() -> None:
    pdf = base64.b64encode(make_pdf([f"page {n} text" for n in range(1, 6)])).decode()
    text = extract_pdf_text(pdf, max_pages=2, max_chars=10_000)
    assert "5 page(s)" in text and "pages 3-5 left out" in text
    assert "page 2 text" in text and "page 3 text" not in text
    short = extract_pdf_text(pdf, max_pages=5, max_chars=1000)
    assert "page 5 text" in short
    cut = extract_pdf_text(pdf, max_pages=5, max_chars=40)
    assert "text cut at 40 characters" in cut


def test_a_damaged_pdf_is_a_note_never_an_error() -> None:
    assert "could not be read" in extract_pdf_text("bm90IGEgcGRm", max_pages=5, max_chars=100)


async def test_pdfs_are_extracted_once_off_the_event_loop_and_then_looked_up() -> None:
    pdf = base64.b64encode(make_pdf(["cached page"])).decode()
    request = body()
    request["messages"] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": pdf,
                            },
                        }
                    ],
                }
            ],
        }
    ]
    texts = DocumentTexts(max_pages=10, max_chars=10_000)
    assert texts.text_of(pdf) is None
    await texts.prepare(request)
    assert "cached page" in (texts.text_of(pdf) or "")
    sent = anthropic_to_openai_request(request, model="m", documents=texts)
    assert "cached page" in sent["messages"][0]["content"]
