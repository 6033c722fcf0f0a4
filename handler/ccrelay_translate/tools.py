"""Anthropic ``tools`` and ``tool_choice`` -> OpenAI chat ``tools``, ``tool_choice``, ``parallel_tool_calls``.

A client tool (no ``type``, or ``type: "custom"``) becomes a function: ``input_schema`` ->
``parameters`` (an empty object schema when absent), ``description`` kept; every other field
(``cache_control``, ``defer_loading``, ``strict``, ``input_examples``...) is dropped. JSON-schema
keywords a backend rejects (`Capabilities.strip_schema_keywords`: Cerebras answers 400
``Unsupported JSON schema fields``) are removed from the schema at every depth; property
*names* that happen to be keywords (Claude Code's Grep tool has a ``pattern`` parameter) stay.

A name longer than OpenAI's 64 characters is shortened (`ccrelay_translate.naming`), in
``tools`` and ``tool_choice`` alike; the reply translators restore it.

Claude Code sends the same tools with every request. Where keywords are stripped (a deep copy
of every schema), the translation is kept (`_KEPT` of them, least recently used dropped), keyed
by the tools' exact JSON (orjson, keys in their order: the output keeps that order, so sorting
would merge inputs whose outputs differ) and the keywords: the result is a pure function of
both, so whoever sends the same tools gets the same translation, and a changed tool is a new
key. Sharing it is safe as long as nobody changes it: each caller gets a fresh list, the
function dicts in it are shared and read-only, as the schemas always were. On Claude Code
2.1.332's request (12 tools, 31 KB): 37 µs translated, 15 µs a repeat, most of it encoding the
key. Without stripping, translating costs 6 µs, less than encoding any key, so nothing is kept
(``python -m timeit`` figures in docs/translation.md).

A server tool (any other ``type``: ``web_search_20250305``, ``bash_20250124``,
``text_editor_20250728``, ``code_execution_...``, ``tool_search_tool_...``) runs inside
Anthropic's API; an OpenAI-compatible backend cannot run it, so it is dropped, and a
``tool_choice`` naming one falls back to the backend's default.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from ccrelay_translate.errors import InvalidRequest, brief
from ccrelay_translate.naming import openai_tool_name

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


_KEPT = 16
_translated: OrderedDict[
    tuple[bytes, frozenset[str]], tuple[list[dict[str, Any]], frozenset[str]]
] = OrderedDict()
"""(the tools' JSON, keywords stripped) -> their translation: bounded, keyed by content."""


def translate_tools(
    tools: object, strip: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], set[str]]:
    """(OpenAI function tools, names of the dropped server tools); treat both as read-only."""
    if tools is None:
        return [], set()
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list of tools")
    if not strip:
        functions, dropped = _translate_tools(tools, strip)
        return functions, set(dropped)
    try:
        key = (orjson.dumps(tools), strip)
    except (orjson.JSONEncodeError, TypeError):  # not plain JSON: translate, keep nothing
        functions, dropped = _translate_tools(tools, strip)
        return functions, set(dropped)
    known = _translated.get(key)
    if known is None:
        known = _translate_tools(tools, strip)
        _translated[key] = known
        if len(_translated) > _KEPT:
            _translated.popitem(last=False)
    else:
        _translated.move_to_end(key)
    return list(known[0]), set(known[1])


def _translate_tools(
    tools: list[Any], strip: frozenset[str]
) -> tuple[list[dict[str, Any]], frozenset[str]]:
    functions: list[dict[str, Any]] = []
    dropped: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{path}: a tool must be an object")
        name = tool.get("name")
        if tool.get("type") not in (None, "custom"):
            if isinstance(name, str):
                dropped.add(name)
            continue
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f'{path}: tool needs a "name"')
        schema = tool.get("input_schema", _EMPTY_SCHEMA)
        if not isinstance(schema, dict):
            raise InvalidRequest(f"{path}.input_schema: must be a JSON schema object")
        function: dict[str, Any] = {"name": openai_tool_name(name)}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        function["parameters"] = strip_keywords(schema, strip) if strip else schema
        functions.append({"type": "function", "function": function})
    return functions, frozenset(dropped)


# Keys whose value maps names to schemas, and keys whose value is a schema or a list of them.
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_SUBSCHEMAS = frozenset(
    {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
)
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})


def strip_keywords(schema: Any, keywords: frozenset[str]) -> Any:
    """A copy of `schema` without `keywords`, at every depth (the input is never changed)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in keywords:
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: strip_keywords(sub, keywords) for name, sub in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = strip_keywords(value, keywords)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [strip_keywords(sub, keywords) for sub in value]
        else:
            out[key] = value
    return out


def schema_keywords(schema: Any) -> set[str]:
    """Every JSON-schema keyword used in `schema`, at every depth (property names excluded)."""
    found: set[str] = set()
    if not isinstance(schema, dict):
        return found
    for key, value in schema.items():
        found.add(key)
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            for sub in value.values():
                found |= schema_keywords(sub)
        elif key in _SUBSCHEMAS:
            found |= schema_keywords(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for sub in value:
                found |= schema_keywords(sub)
    return found


def translate_tool_choice(
    choice: object, functions: list[dict[str, Any]], dropped: set[str]
) -> tuple[str | dict[str, Any] | None, bool | None]:
    """(OpenAI tool_choice, parallel_tool_calls); None for "leave it out".

    auto -> "auto", any -> "required", tool -> the named function, none -> "none";
    ``disable_parallel_tool_use: true`` -> ``parallel_tool_calls: false``. Without function
    tools both are left out (OpenAI rejects a tool_choice with no tools).
    """
    if choice is None or not functions:
        return None, None
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: must be an object")
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest('tool_choice: type "tool" needs a "name"')
        if name in dropped:
            return None, parallel
        sent = openai_tool_name(name)
        if all(f["function"]["name"] != sent for f in functions):
            raise InvalidRequest(f"tool_choice: no tool named {brief(name)} in tools")
        return {"type": "function", "function": {"name": sent}}, parallel
    raise InvalidRequest(
        f'tool_choice.type: unknown {brief(kind)}; expected "auto", "any", "tool" or "none"'
    )
