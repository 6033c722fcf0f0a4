"""Anthropic ``tools`` and ``tool_choice`` -> OpenAI chat ``tools``, ``tool_choice``, ``parallel_tool_calls``.

A client tool (no ``type``, or ``type: "custom"``) becomes a function: ``input_schema`` ->
``parameters`` (an empty object schema when absent), ``description`` kept; every other field
(``cache_control``, ``defer_loading``, ``strict``, ``input_examples``...) is dropped. JSON-schema
keywords a backend rejects (`Capabilities.strip_schema_keywords`: Cerebras answers 400
``Unsupported JSON schema fields``) are removed from the schema at every depth; property
*names* that happen to be keywords (Claude Code's Grep tool has a ``pattern`` parameter) stay.

A server tool (any other ``type``: ``web_search_20250305``, ``bash_20250124``,
``text_editor_20250728``, ``code_execution_...``, ``tool_search_tool_...``) runs inside
Anthropic's API; an OpenAI-compatible backend cannot run it, so it is dropped, and a
``tool_choice`` naming one falls back to the backend's default.
"""

from __future__ import annotations

from typing import Any

from ccrelay_translate.errors import InvalidRequest

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def translate_tools(
    tools: object, strip: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], set[str]]:
    """(OpenAI function tools, names of the dropped server tools)."""
    if tools is None:
        return [], set()
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list of tools")
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
        function: dict[str, Any] = {"name": name}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        function["parameters"] = strip_keywords(schema, strip) if strip else schema
        functions.append({"type": "function", "function": function})
    return functions, dropped


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
        if all(f["function"]["name"] != name for f in functions):
            raise InvalidRequest(f"tool_choice: no tool named {name!r} in tools")
        return {"type": "function", "function": {"name": name}}, parallel
    raise InvalidRequest(
        f'tool_choice.type: unknown {kind!r}; expected "auto", "any", "tool" or "none"'
    )
