"""The latency record: one per backend attempt, and one per client request beside them.

A record holds timings, counts and names only. There is no field for prompt or completion text,
headers, URLs or keys, and the model forbids extra fields, so nothing of the kind can ride along.

The schema is fixed, so that DuckDB, Athena and ``ccrelay stats`` read the same table: every
field is written on every line (``null`` when it does not apply), and the timestamp always has
microseconds (``2026-12-01T10:00:00.000000Z``, never ``...00Z``): a format that varies from line
to line makes readers infer different types. docs/records.md documents each field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator

__all__ = ["TIMESTAMP_FORMAT", "CacheStatus", "LatencyRecord", "RecordKind", "format_timestamp"]

CacheStatus = Literal["hit", "miss", "bypass"]
"""`bypass`: the backend did not consult its cache (no-cache/no-store, or its Redis was down)."""
RecordKind = Literal["attempt", "request"]
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""Always six fractional digits and a ``Z``: one type for every reader."""


def format_timestamp(value: datetime) -> str:
    """``2026-12-01T10:00:00.000000Z``: :data:`TIMESTAMP_FORMAT`, without strftime's cost."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class LatencyRecord(BaseModel):
    """The measurements of one attempt against one backend, or of one whole client request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: AwareDatetime
    """When the attempt (or request) started, in UTC."""
    kind: RecordKind = "attempt"
    """``attempt``: one try against one backend. ``request``: what the client got, once per
    request, across retries and failover."""
    request_id: str
    session: str | None = None
    """The Claude Code session the request belongs to (its ``X-Claude-Code-Session-Id``, else
    the `ccrelay code` session's own id); its status line reads it."""
    request_class: str | None = None
    """What Claude Code said the request is (``main``, ``subagent``, ``compaction``...), when it
    sent its gateway hints."""
    backend: str
    """The configured backend name (``cerebras``, ``my-runpod``); for a request, the one that
    served it (or the last one tried)."""
    backend_type: str
    """The strategy behind it (``anthropic``, ``cerebras``, ``runpod``, ``openai``...)."""
    model: str
    """The model the backend was asked for."""
    requested_model: str | None = None
    """Request records: the model the client asked for (``claude-sonnet-4-5``...)."""
    route: str | None = None
    """The routing rule that chose the backend (``default``, ``background``, ``explicit``...)."""
    outcome: str
    """``ok``, or the word for how it failed (``timeout``, ``connect_failed``, ``http_error``...)."""
    status: int | None = None
    """The upstream HTTP status, when there was one."""
    attempt: int | None = Field(default=None, ge=1)
    """Attempt records: this try's number at its backend (1 = first)."""
    attempts: int | None = Field(default=None, ge=0)
    """Request records: every attempt made, across failover."""
    failovers: int | None = Field(default=None, ge=0)
    """Request records: backends given up on before the one that answered."""
    backoff_ms: float | None = Field(default=None, ge=0)
    """Request records: time spent sleeping between retries."""
    latency_ms: float = Field(ge=0)
    ttfb_ms: float | None = Field(default=None, ge=0)
    """Time to the first byte of a streamed response; ``None`` when not streamed."""
    streamed: bool = False
    tokens_in: int = Field(default=0, ge=0)
    """Input tokens billed at the plain input price (Anthropic: not counting cache reads and
    writes; other backends: the whole prompt)."""
    tokens_out: int = Field(default=0, ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    """Input tokens an Anthropic backend read from its prompt cache."""
    cache_write_tokens: int = Field(default=0, ge=0)
    """Input tokens an Anthropic backend wrote to its prompt cache."""
    cache: CacheStatus | None = None
    """What the backend reported about its response cache, when it reports one."""
    cost_usd: float = Field(default=0.0, ge=0)
    """Estimated from the price table when recorded: tokens at the backend's price, plus its
    GPU-seconds when it has a ``gpu_usd_per_second``."""
    baseline_usd: float | None = Field(default=None, ge=0)
    """Request records: what Anthropic would have billed for this request on the Claude model
    the client asked for, prompt caching included (see docs/records.md for the estimate)."""
    hedged: bool | None = None
    """Request records: answered by a fallback because the self-hosted endpoint had no worker
    ready (the cold-start hedge)."""
    cold_wait_ms: float | None = Field(default=None, ge=0)
    """Request records: time spent waiting for a worker to start (a queued job, or a load
    balancer with no worker up); null when the backend cannot tell (the OpenAI route)."""
    repaired_tool_calls: int = Field(default=0, ge=0)
    """Streamed tool calls the translation closed as valid JSON with a name."""

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_serializer("timestamp", when_used="json")
    def _fixed_precision(self, value: datetime) -> str:
        return format_timestamp(value)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_json_line(self) -> str:
        """One line of JSON, without the trailing newline; the same as ``model_dump_json``,
        made with orjson from the validated fields (a record is written on every request)."""
        fields = dict(self.__dict__)
        fields["timestamp"] = format_timestamp(self.timestamp)
        return orjson.dumps(fields).decode()

    @classmethod
    def from_json_line(cls, line: str | bytes) -> LatencyRecord:
        return cls.model_validate_json(line)
