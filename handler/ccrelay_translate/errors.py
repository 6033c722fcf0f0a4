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

__all__ = ["InvalidRequest", "MalformedReply", "TranslationError"]


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
