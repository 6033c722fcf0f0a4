"""One latency record per backend attempt.

A record holds timings, counts and names only. There is no field for prompt or completion text,
headers, URLs or keys, and the model forbids extra fields, so nothing of the kind can ride along.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = ["CacheStatus", "LatencyRecord"]

CacheStatus = Literal["hit", "miss", "bypass"]
"""`bypass`: the backend did not consult its cache (no-cache/no-store, or its Redis was down)."""


class LatencyRecord(BaseModel):
    """The measurements of one attempt against one backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: AwareDatetime
    """When the attempt started, in UTC."""
    request_id: str
    backend: str
    """The configured backend name (``cerebras``, ``my-runpod``)."""
    backend_type: str
    """The strategy behind it (``anthropic``, ``cerebras``, ``runpod``, ``openai``)."""
    model: str
    outcome: str
    """``"ok"``, or the class name of the error the attempt ended with."""
    status: int | None = None
    """The upstream HTTP status, when there was one."""
    attempt: int = Field(ge=1)
    latency_ms: float = Field(ge=0)
    ttfb_ms: float | None = Field(default=None, ge=0)
    """Time to the first byte of a streamed response; ``None`` when not streamed."""
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    cache: CacheStatus | None = None
    """What the backend reported about its response cache, when it reports one."""
    cost_usd: float = Field(default=0.0, ge=0)
    """Estimated from the price table at the time of the attempt."""
    streamed: bool = False
    route: str | None = None
    """The routing rule that chose the backend (``default``, ``background``, ``explicit``...)."""
    session: str | None = None
    """The `ccrelay code` session the request belongs to (its status line reads it)."""

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_json_line(self) -> str:
        """One line of JSON, without the trailing newline."""
        return self.model_dump_json()

    @classmethod
    def from_json_line(cls, line: str | bytes) -> LatencyRecord:
        return cls.model_validate_json(line)
