"""Translating the same tools again (Claude Code resends them with every request) reuses the
first translation where it is worth keeping: keyed by content, bounded, never shared mutably."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ccrelay_translate import tools as tools_module
from ccrelay_translate.tools import strip_keywords, translate_tools

from .samples import claude_code_tools

STRIP = frozenset({"$schema", "additionalProperties"})


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    tools_module._translated.clear()


def test_a_repeat_reuses_the_translation_of_equal_content() -> None:
    first, dropped = translate_tools(claude_code_tools(), STRIP)
    again, dropped_again = translate_tools(claude_code_tools(), STRIP)  # a new, equal list
    assert again == first and dropped_again == dropped == {"web_search", "bash"}
    assert again is not first  # a fresh list for each caller
    assert all(a is b for a, b in zip(again, first, strict=True))  # the same function dicts
    assert len(tools_module._translated) == 1


def test_the_translation_is_what_stripping_gives() -> None:
    tools = claude_code_tools()
    functions, _ = translate_tools(tools, STRIP)
    assert functions[0]["function"]["parameters"] == strip_keywords(tools[0]["input_schema"], STRIP)
    assert "additionalProperties" not in json.dumps(functions)


def test_any_change_in_the_tools_or_the_keywords_is_a_new_translation() -> None:
    tools = claude_code_tools()
    translate_tools(tools, STRIP)
    changed = copy.deepcopy(tools)
    changed[0]["description"] += "!"
    assert translate_tools(changed, STRIP)[0][0]["function"]["description"].endswith("!")
    other = translate_tools(tools, frozenset({"$schema"}))[0]
    assert "additionalProperties" in json.dumps(other)
    assert len(tools_module._translated) == 3


def test_the_memo_is_bounded() -> None:
    for n in range(tools_module._KEPT + 5):
        translate_tools([{"name": f"t{n}"}], STRIP)
    assert len(tools_module._translated) == tools_module._KEPT


def test_a_caller_changing_its_list_does_not_change_the_next_one_s() -> None:
    first, dropped = translate_tools(claude_code_tools(), STRIP)
    first.clear()
    dropped.clear()
    again, dropped_again = translate_tools(claude_code_tools(), STRIP)
    assert len(again) == 12 and dropped_again == {"web_search", "bash"}


def test_tools_that_are_not_plain_json_are_translated_unkept() -> None:
    tools: list[Any] = [{"name": "f", "input_schema": {"type": "object", "default": {1, 2}}}]
    functions, _ = translate_tools(tools, STRIP)
    assert functions[0]["function"]["name"] == "f"
    assert not tools_module._translated
