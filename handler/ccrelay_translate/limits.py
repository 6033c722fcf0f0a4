"""How deep a decoded JSON body may nest, checked once at each boundary that decodes one.

orjson reads up to 1024 levels but writes only 254 (``orjson.dumps`` raises "Recursion limit
reached" from 255 on). A body that decodes fine could therefore fail much later, when the
gateway encodes a reply, a record or a worker job holding part of it, as an internal error
with a traceback. The gateway and the worker call `check_depth` on every decoded request body
instead, and refuse a too-deep one as the caller's mistake, naming where it is.

`MAX_DEPTH` is 128, half of what orjson writes, because the body is rarely written as it came:
a tool schema moves one level down in OpenAI's ``tools[i].function.parameters``, a worker job
wraps the request in its envelope, a reply's tool input sits under ``content[i].input`` of an
event. 128 leaves that headroom many times over, and is far above anything real: Claude Code's
deepest tool schema nests under 12 levels. Below it every recursive step of the translation
(schema stripping, the strict-schema check, ``copy.deepcopy`` of replayed events, at most three
Python frames a level) stays far under Python's recursion limit of 1000.

The walk is iterative (a body can be 1024 levels deep when it arrives) and costs about 20 µs
for a 50 KB Claude Code request.
"""

from __future__ import annotations

from typing import Any

from ccrelay_translate.errors import BRIEF_CHARS, InvalidRequest, brief

__all__ = ["MAX_DEPTH", "check_depth", "nests_deeper_than"]

MAX_DEPTH = 128
"""Containers (objects and lists) a body may nest, the body itself counting as the first."""

_SHOWN_SEGMENTS = 6


def nests_deeper_than(value: object, limit: int) -> bool:
    """Whether `value` holds containers nested more than `limit` levels (itself the first)."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def check_depth(value: object, *, limit: int = MAX_DEPTH, root: str = "") -> None:
    """Raise `InvalidRequest` naming the first value (in document order) nested deeper than
    `limit`; `root` prefixes the path (``"request"``: ``request.tools[0]...``)."""
    if not nests_deeper_than(value, limit):
        return
    path = _first_too_deep(value, limit)
    where = _path_text(root, path)
    raise InvalidRequest(
        f"{where}: nested more than {limit} levels deep (JSON objects and lists inside one "
        "another); flatten it"
    )


def _first_too_deep(value: object, limit: int) -> list[str | int]:
    """The path to the first container at depth `limit` + 1, in document order."""
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(value, 1, None)]
    while stack:
        node, depth, trail = stack.pop()
        if depth > limit:
            return _unlink(trail)
        items = list(node.items()) if type(node) is dict else list(enumerate(node))
        for key, child in reversed(items):  # reversed: the first child is popped first
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, (trail, key)))
    return []


def _unlink(trail: tuple[Any, ...] | None) -> list[str | int]:
    keys: list[str | int] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    keys.reverse()
    return keys


def _path_text(root: str, keys: list[str | int]) -> str:
    """``tools[0].input_schema.properties.a…(290 more levels)….items``: a long path shortened,
    every key cut to a few characters, so the message stays one line."""
    segments = [_segment(key) for key in keys]
    if len(segments) > _SHOWN_SEGMENTS + 2:
        hidden = len(segments) - _SHOWN_SEGMENTS - 2
        segments = [*segments[:_SHOWN_SEGMENTS], f"…({hidden} more levels)…", *segments[-2:]]
    return (root + "".join(segments)).lstrip(".") or "(the body)"


def _segment(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if key.isidentifier() and len(key) <= BRIEF_CHARS:
        return f".{key}"
    return f"[{brief(key)}]"
