"""The job-error string: what a failed RunPod job carries, so clients map it by code.

The runpod SDK requires a job's ``error`` to be a string (a dict error ends the job COMPLETED
with no output), so the worker writes JSON inside the string: ``{"message": ..., "code": ...}``.
A client branches on ``code``, never on the wording of ``message``.
"""

from __future__ import annotations

import json
from typing import Final

__all__ = ["CODE_INVALID_INPUT", "CODE_MODEL_NOT_ALLOWED", "decode_job_error", "encode_job_error"]

CODE_INVALID_INPUT: Final = "invalid_input"
CODE_MODEL_NOT_ALLOWED: Final = "model_not_allowed"


def encode_job_error(message: str, code: str) -> str:
    """The string a worker puts in a job's ``error``."""
    return json.dumps({"message": message, "code": code})


def decode_job_error(text: str) -> tuple[str, str | None]:
    """(message, code) from a job-error string; plain text is a message without a code."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return stripped, None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            code = data.get("code")
            return data["message"], code if isinstance(code, str) else None
    return stripped, None
