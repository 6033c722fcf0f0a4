"""``output_config.format`` -> ``response_format``: ``strict: true`` only for a schema OpenAI's
strict mode takes (https://platform.openai.com/docs/guides/structured-outputs, "Supported
schemas"), else ``strict: false``; the schema itself is never rewritten."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ccrelay_translate import anthropic_to_openai_request
from ccrelay_translate.structured import fits_strict_mode

# Claude Code 2.1.332's memory-recall format, as its binary sends it
MEMORY = {
    "type": "object",
    "properties": {"selected_memories": {"type": "array", "items": {"type": "string"}}},
    "required": ["selected_memories"],
    "additionalProperties": False,
}


def strict_of(schema: dict[str, Any]) -> bool:
    request = {
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    sent = anthropic_to_openai_request(request, model="m")["response_format"]
    assert sent["json_schema"]["schema"] == schema  # never rewritten
    strict = sent["json_schema"]["strict"]
    assert isinstance(strict, bool)
    return strict


def nested(inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"outer": inner},
        "required": ["outer"],
        "additionalProperties": False,
    }


def test_claude_code_s_own_schema_is_sent_strict() -> None:
    assert strict_of(MEMORY) is True


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        (
            {k: v for k, v in MEMORY.items() if k != "additionalProperties"},
            "no additionalProperties",
        ),
        ({**MEMORY, "additionalProperties": True}, "additionalProperties true"),
        ({**MEMORY, "required": []}, "an optional property"),
        ({k: v for k, v in MEMORY.items() if k != "required"}, "no required list"),
        (nested({"type": "object", "properties": {"a": {"type": "string"}}}), "nested object"),
        (
            nested({"type": "array", "items": {"type": "object", "properties": {"a": {}}}}),
            "object inside items",
        ),
        ({**MEMORY, "allOf": [{"type": "object"}]}, "allOf"),
        (nested({"oneOf": [{"type": "string"}, {"type": "integer"}]}), "oneOf"),
        ({"anyOf": [MEMORY]}, "root anyOf"),
        ({"type": "array", "items": {"type": "string"}}, "root not an object"),
        (
            {**MEMORY, "$defs": {"d": {"type": "object", "properties": {"x": {}}}}},
            "a definition",
        ),
    ],
)
def test_a_schema_strict_mode_would_refuse_is_sent_not_strict(
    schema: dict[str, Any], why: str
) -> None:
    assert strict_of(schema) is False, why


def test_valid_nesting_anyof_and_definitions_stay_strict() -> None:
    item = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "note": {"type": ["string", "null"]}},
        "required": ["id", "note"],
        "additionalProperties": False,
    }
    schema = nested(
        {
            "anyOf": [
                {"type": "array", "items": {"$ref": "#/$defs/item"}},
                {"type": "null"},
            ]
        }
    )
    schema["$defs"] = {"item": item}
    assert strict_of(schema) is True


def test_the_check_is_iterative_at_the_depth_limit() -> None:
    schema: dict[str, Any] = copy.deepcopy(MEMORY)
    for _ in range(60):  # 120 levels of JSON: inside the request's depth limit
        schema = nested(schema)
    assert fits_strict_mode(schema) is True
