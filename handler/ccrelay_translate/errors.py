"""The translation's own exception tree, which each deployable maps at its boundary.

The client's backends turn these into `ccrelay.errors` (an invalid request is a 400, a reply
that cannot be read is the backend's `MalformedReply`); the worker's handler turns them into its
job errors. Whose fault it is and whether a retry could help are properties of the type.

    TranslationError
    ├── InvalidRequest      the Anthropic request cannot be translated   caller    never retried
    └── MalformedReply      an upstream reply cannot be read             backend   never retried
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "BRIEF_CHARS",
    "InvalidRequest",
    "MalformedReply",
    "TranslationError",
    "brief",
    "clipped",
]

BRIEF_CHARS = 40
"""At most this many characters of a caller's or an upstream's value go into a message: a
refusal must stay one readable line, whatever size the offending value is (a 100 KB role)."""


def brief(value: object, limit: int = BRIEF_CHARS) -> str:
    """`value` as an error message may echo it: a string quoted and cut to `limit` characters
    with an ellipsis, a number or null as written, anything else named by its kind only (its
    repr could be huge, or nested too deep to print at all)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return repr(value[: limit - 1] + "\u2026")
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -(10**limit) < value < 10**limit else "a very large number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a value of another kind"


def clipped(text: object, limit: int = 200) -> str:
    """An upstream's own message, unquoted, cut to `limit` characters with an ellipsis."""
    if not isinstance(text, str):
        return brief(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class TranslationError(Exception):
    fault: ClassVar[Literal["caller", "backend"]]
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(TranslationError):
    """The request is wrong (a field's type, a block's shape): another backend would refuse it
    too. The message names the field, as ``messages[2].content[0]: ...``."""

    fault = "caller"


class MalformedReply(TranslationError):
    """The upstream's reply (a completion, a chunk, an event sequence) cannot be translated."""

    fault = "backend"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(message)
        self.backend = backend
