"""What the latency records are told, and by whom: the observer contract.

A backend reports one `Attempt` per try (through the `AttemptObserver` it was built with); the
router reports one `RequestSummary` per client request (through its `RequestObserver`). Neither
knows about sinks or prices: `ccrelay.latency.recorder.LatencyRecorder` is the observer that
turns them into records. Nothing here holds prompt text or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Attempt", "AttemptObserver", "RequestObserver", "RequestSummary", "elapsed_ms"]


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), as every record says it."""
    return round((time.perf_counter() - started) * 1000, 3)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one try cost and how it ended."""

    request_id: str
    backend: str
    backend_type: str
    model: str
    attempt: int
    outcome: str
    status: int | None
    latency_ms: float
    ttfb_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache: str | None = None
    streamed: bool = False
    route: str = "default"
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    repaired_tool_calls: int = 0
    """Streamed tool calls the translation closed as valid JSON with a name."""


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What the client got for one request, across retries and failover."""

    request_id: str
    requested_model: str | None
    backend: str
    """The backend that served it, or the last one tried ("" when none was)."""
    backend_type: str
    model: str
    route: str
    outcome: str
    status: int | None
    attempts: int
    failovers: int
    backoff_ms: float
    latency_ms: float
    ttfb_ms: float | None
    streamed: bool
    usage: Mapping[str, Any]
    cache: str | None
    conversation: str
    """Which conversation it continues: what Anthropic's prompt cache would have been keyed on,
    for the baseline estimate. Not the prompt itself."""
    session: str | None = None
    """Claude Code's session id, when it sent one."""
    request_class: str | None = None
    """What Claude Code said the request is (main, subagent, compaction, ...), when it did."""
    hedged: bool = False
    """A fallback answered because the self-hosted endpoint had no worker ready."""
    cold_wait_ms: float | None = None
    """Time spent waiting for a cold worker, when the backend can tell."""


class AttemptObserver(Protocol):
    def on_attempt(self, attempt: Attempt) -> None: ...


@runtime_checkable
class RequestObserver(Protocol):
    def on_request(self, summary: RequestSummary) -> None: ...
