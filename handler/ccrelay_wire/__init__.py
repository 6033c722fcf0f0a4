"""What ccrelay's two deployables speak to each other: the one module both sides import.

The worker image (``ccrelay_handler``, ``ccrelay_worker``) and the client (``ccrelay``) share
nothing else. This package depends on the standard library only.

- `sse`: server-sent events, an incremental decoder and an encoder;
- `inbound`: deadlines and a cap for what comes in to both HTTP faces (loaded on first use: it
  needs asyncio, which ``ccrelay --help`` must not load);
- `verdict`: the cache verdict's values, field and header;
- `job_error`: the JSON inside a failed job's error string;
- `words`: OS failures in plain words, for both sides' messages;
- `lazy`: the lazy-export helper every package ``__init__`` of both sides uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.job_error import (
    CODE_INVALID_INPUT,
    CODE_MODEL_NOT_ALLOWED,
    CODE_PROMPT_TOO_LONG,
    PROMPT_TOO_LONG,
    decode_job_error,
    encode_job_error,
    prompt_too_long,
)
from ccrelay_wire.lazy import lazy_exports
from ccrelay_wire.sse import EventTooLarge, ServerSentEvent, SSEDecoder, encode_sse
from ccrelay_wire.verdict import CACHE_VERDICT_FIELD, CACHE_VERDICT_HEADER, CACHE_VERDICTS

if TYPE_CHECKING:
    from ccrelay_wire.inbound import InboundGuard, InboundLimits

__getattr__, __dir__ = lazy_exports(
    __name__, {"ccrelay_wire.inbound": ("InboundGuard", "InboundLimits")}
)

__all__ = [
    "CACHE_VERDICTS",
    "CACHE_VERDICT_FIELD",
    "CACHE_VERDICT_HEADER",
    "CODE_INVALID_INPUT",
    "CODE_MODEL_NOT_ALLOWED",
    "CODE_PROMPT_TOO_LONG",
    "PROMPT_TOO_LONG",
    "EventTooLarge",
    "InboundGuard",
    "InboundLimits",
    "SSEDecoder",
    "ServerSentEvent",
    "decode_job_error",
    "encode_job_error",
    "encode_sse",
    "prompt_too_long",
]
