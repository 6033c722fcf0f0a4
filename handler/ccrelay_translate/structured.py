"""Anthropic's ``output_config.format`` -> OpenAI's ``response_format``, strict only when valid.

OpenAI's strict mode (``json_schema.strict: true``) takes a subset of JSON Schema and refuses
the request otherwise (https://platform.openai.com/docs/guides/structured-outputs, "Supported
schemas"): every object must set ``additionalProperties: false`` and list every property in
``required``; the root must be an object; ``allOf``, ``not``, ``if``/``then``/``else``,
``dependentRequired``, ``dependentSchemas`` are not supported (and ``oneOf`` and
``patternProperties`` are not on the supported list).

Decision: the schema is sent as it came, with ``strict: true`` when it already fits that subset
(Claude Code's own schemas do: its memory and classifier formats set both), else with
``strict: false``. It is never rewritten to fit: making an optional property required (with a
null type, OpenAI's recipe) changes what a valid answer is, and the caller validates the
answer against its own schema, where a ``null`` for an absent field would fail. With
``strict: false`` the server still steers the output by the schema (vLLM and SGLang guide
decoding by it either way), it just does not promise it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fits_strict_mode", "response_format"]

_UNSUPPORTED = frozenset(
    {
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "oneOf",
        "patternProperties",
    }
)


def response_format(fmt: object) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` for ``output_config.format`` (json_schema), or None."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        return None
    name = fmt.get("name") if isinstance(fmt.get("name"), str) else "output"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": fits_strict_mode(schema)},
    }


def fits_strict_mode(schema: dict[str, Any]) -> bool:
    """Whether OpenAI's strict mode takes `schema` as it is (see the module docstring)."""
    if schema.get("type") != "object" or "anyOf" in schema:
        return False
    stack: list[Any] = [schema]
    while stack:  # iterative: a schema may nest as deep as the request's depth limit
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if _UNSUPPORTED & node.keys():
            return False
        if not _object_fits(node):
            return False
        for key in ("properties", "$defs", "definitions"):
            named = node.get(key)
            if isinstance(named, dict):
                stack.extend(named.values())
        for key in ("items", "additionalProperties", "contains"):
            stack.append(node.get(key))
        for key in ("anyOf", "prefixItems"):
            listed = node.get(key)
            if isinstance(listed, list):
                stack.extend(listed)
    return True


def _object_fits(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if not is_object and "properties" not in node:
        return True
    if node.get("additionalProperties") is not False:
        return False
    properties = node.get("properties", {})
    required = node.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return False
    return set(properties) == set(required)
