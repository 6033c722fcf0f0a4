"""The job-error string: what a failed RunPod job carries, so clients map it by code.

The runpod SDK requires a job's ``error`` to be a string (a dict error ends the job COMPLETED
with no output), so the worker writes JSON inside the string: ``{"message": ..., "code": ...}``.
A client branches on ``code``, never on the wording of ``message``.

What a client reads back is not always ours: a job that raised is reported by the SDK as its
captured-exception JSON (``error_type``, ``error_message``, ``error_traceback``), and some
paths hand the error over as an object rather than a string. `decode_job_error` reads them all
and never returns a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = [
    "CODE_INVALID_INPUT",
    "CODE_MODEL_NOT_ALLOWED",
    "CODE_PROMPT_TOO_LONG",
    "PROMPT_TOO_LONG",
    "decode_job_error",
    "encode_job_error",
    "prompt_too_long",
]

CODE_INVALID_INPUT: Final = "invalid_input"
CODE_MODEL_NOT_ALLOWED: Final = "model_not_allowed"
CODE_PROMPT_TOO_LONG: Final = "prompt_too_long"
"""The prompt does not fit the worker's window; the message is `prompt_too_long`'s."""

PROMPT_TOO_LONG: Final = re.compile(r"prompt is too long: \d+ tokens > \d+ maximum")
"""Anthropic's words for a prompt over the window, which Claude Code 2.1.332 matches whole
(anchored) before it compacts; older releases search for them anywhere in the message."""


def prompt_too_long(tokens: int, maximum: int) -> str:
    """Those words, as the gateway and the worker both say them."""
    return f"prompt is too long: {tokens} tokens > {maximum} maximum"


_MESSAGE_KEYS = ("message", "error_message", "error", "detail")


def encode_job_error(message: str, code: str) -> str:
    """The string a worker puts in a job's ``error``."""
    return json.dumps({"message": message, "code": code})


def decode_job_error(error: object) -> tuple[str, str | None]:
    """(message, code) from a failed job's error: our JSON string, the SDK's captured
    exception, plain text, or any of those as an object; "" when there is no text."""
    if isinstance(error, str):
        text = error.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                return text, None
            if isinstance(data, dict):
                return decode_job_error(data)
        return text, None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        code = code if isinstance(code, str) else None
        for key in _MESSAGE_KEYS:
            value = error.get(key)
            if isinstance(value, str) and value:
                return value, code
            if isinstance(value, dict):
                message, inner = decode_job_error(value)
                return message, inner or code
        return "", code
    return ("" if error is None else str(error)), None
