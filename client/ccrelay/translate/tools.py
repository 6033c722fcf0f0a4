"""Anthropic ``tools`` and ``tool_choice`` -> OpenAI chat ``tools``, ``tool_choice``, ``parallel_tool_calls``.

A client tool (no ``type``, or ``type: "custom"``) becomes a function: ``input_schema`` ->
``parameters`` (an empty object schema when absent), ``description`` kept; every other field
(``cache_control``, ``defer_loading``, ``strict``, ``input_examples``...) is dropped.

A server tool (any other ``type``: ``web_search_20250305``, ``bash_20250124``,
``text_editor_20250728``, ``code_execution_...``, ``tool_search_tool_...``) runs inside
Anthropic's API; an OpenAI-compatible backend cannot run it, so it is dropped, and a
``tool_choice`` naming one falls back to the backend's default.
"""

from __future__ import annotations

from typing import Any

from ccrelay.errors import InvalidRequestError

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def translate_tools(tools: object) -> tuple[list[dict[str, Any]], set[str]]:
    """(OpenAI function tools, names of the dropped server tools)."""
    if tools is None:
        return [], set()
    if not isinstance(tools, list):
        raise InvalidRequestError("tools: must be a list of tools")
    functions: list[dict[str, Any]] = []
    dropped: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"{path}: a tool must be an object")
        name = tool.get("name")
        if tool.get("type") not in (None, "custom"):
            if isinstance(name, str):
                dropped.add(name)
            continue
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f'{path}: tool needs a "name"')
        schema = tool.get("input_schema", _EMPTY_SCHEMA)
        if not isinstance(schema, dict):
            raise InvalidRequestError(f"{path}.input_schema: must be a JSON schema object")
        function: dict[str, Any] = {"name": name}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        function["parameters"] = schema
        functions.append({"type": "function", "function": function})
    return functions, dropped


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
        raise InvalidRequestError("tool_choice: must be an object")
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
            raise InvalidRequestError('tool_choice: type "tool" needs a "name"')
        if name in dropped:
            return None, parallel
        if all(f["function"]["name"] != name for f in functions):
            raise InvalidRequestError(f"tool_choice: no tool named {name!r} in tools")
        return {"type": "function", "function": {"name": name}}, parallel
    raise InvalidRequestError(
        f'tool_choice.type: unknown {kind!r}; expected "auto", "any", "tool" or "none"'
    )
