"""The values a backend takes and hands back, apart from the `Backend` class itself.

A backend takes the canonical request (an Anthropic Messages request as a dict, what Claude
Code sends) with its `RequestOptions`, and answers in Anthropic's shapes: a `Completion`, or an
`EventStream` of Anthropic events (`ccrelay.backends.stream`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccrelay.http.events import RawEvent
from ccrelay_wire import CACHE_VERDICTS

__all__ = [
    "CacheVerdict",
    "Completion",
    "HealthReport",
    "ModelInfo",
    "RepairedToolCalls",
    "RequestOptions",
    "RequestTally",
    "StreamItem",
]


@dataclass
class RequestTally:
    """What one client request spent across its backends: shared by every copy of its
    `RequestOptions` (``dataclasses.replace`` keeps the same object), added to by retries."""

    backoff_ms: float = 0.0
    cold_wait_ms: float | None = None
    """Time spent waiting for a worker to start, when a backend can tell (None: it cannot)."""

    def waited_cold(self, seconds: float) -> None:
        self.cold_wait_ms = (self.cold_wait_ms or 0.0) + seconds * 1000


@dataclass(frozen=True)
class RequestOptions:
    """Per-request context that is not part of the Messages body."""

    request_id: str = ""
    forward_headers: Mapping[str, str] = field(default_factory=dict)
    model_override: str | None = None
    prompt_tokens: int | None = None
    """The request's estimated input tokens, computed once (by the router) and reused."""
    route: str = "default"
    """The routing rule that sent the request to this backend (`ccrelay.routing.rules`)."""
    tally: RequestTally = field(default_factory=RequestTally)
    session_id: str | None = None
    """Claude Code's ``X-Claude-Code-Session-Id``: the conversation, for records and affinity."""
    request_class: str | None = None
    """Claude Code's ``x-claude-code-request-class`` (main, subagent, compaction, ...)."""
    agent_type: str | None = None
    """Claude Code's ``x-claude-code-agent-type`` for a sub-agent's requests."""


@dataclass(frozen=True)
class CacheVerdict:
    """A marker `_stream_once` yields to report the server's cache verdict; never an event."""

    value: str

    @classmethod
    def parse(cls, value: Any) -> CacheVerdict | None:
        """The marker for a reported verdict ("hit", "miss", "bypass"); None for anything else."""
        return cls(value) if isinstance(value, str) and value in CACHE_VERDICTS else None


@dataclass(frozen=True)
class RepairedToolCalls:
    """A marker `_stream_once` yields after its last event: how many streamed tool calls the
    translation closed as valid JSON with a name (their arguments were cut off or broken)."""

    count: int


StreamItem = dict[str, Any] | RawEvent | CacheVerdict | RepairedToolCalls
"""What `_stream_once` yields: Anthropic events (dicts, or `RawEvent`s passed through as they
came), and a few markers (`CacheVerdict`, `RepairedToolCalls`) that are never passed on."""


@dataclass(frozen=True)
class ModelInfo:
    id: str
    owned_by: str | None = None
    context_window: int | None = None
    """What the server reports (vLLM ``max_model_len``, the ccrelay worker ``context_window``)."""


@dataclass(frozen=True)
class HealthReport:
    backend: str
    ok: bool
    detail: str
    latency_ms: float


@dataclass(frozen=True)
class Completion:
    """A non-streamed answer from one backend; ``attempts`` are that backend's tries."""

    response: dict[str, Any]
    backend: str
    model: str
    attempts: int
    cache: str | None = None
