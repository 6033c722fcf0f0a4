"""How a `runpod` backend is configured: which endpoint, of which type, and its limits.

RunPod serverless endpoints come in two types (RunPod's REST v2 ``type``):

- ``queue`` (``QUEUE``): requests become jobs (``https://api.runpod.ai/v2/{id}/...``) that any
  free worker takes. Anthropic requests go through the endpoint's OpenAI route
  (``/openai/v1/messages``), which RunPod relays to the worker as ``openai_route``.
- ``load_balancer`` (``LOAD_BALANCER``): requests go straight to a worker's HTTP server
  (``https://{id}.api.runpod.ai/v1/messages``), and the ``X-Runpod-Worker-Id`` header can pin
  a session to the worker that holds its KV cache (``affinity``).

Either way the worker translates the Anthropic request for its engine: this backend sends
Claude Code's request through unchanged.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ccrelay.coldstart.settings import ColdStartSettings
from ccrelay_config.models import BackendSettings, check_http_url
from ccrelay_wire.defaults import DEFAULT_MODEL

__all__ = ["RUNPOD_API", "RunPodCacheControl", "RunPodSettings"]

RUNPOD_API = "https://api.runpod.ai/v2"
LOAD_BALANCER_HOST = "api.runpod.ai"
"""A load-balanced endpoint answers at https://{endpoint_id}.api.runpod.ai (RunPod's
serverless/load-balancing docs)."""

LB_QUEUE_LIMIT_S = 120.0
"""A load-balanced request waits at most 2 min for a worker, then RunPod answers
"no workers available"; the backend asks again until `cold_start_timeout_s`."""
LB_STRICT_WAIT_S = 300.0
"""A strict pin waits about 5 min for its busy worker before RunPod answers 400
``worker_timeout`` (runpod/docs serverless/load-balancing/worker-affinity.mdx)."""
LB_PROCESSING_LIMIT_S = 330.0
"""RunPod ends a load-balanced request after 5.5 min of processing."""
LB_PAYLOAD_LIMIT = 30 * 1024 * 1024
"""30 MB each way on a load-balanced endpoint."""


class RunPodCacheControl(BaseModel):
    """Per-request cache control the worker reads (``cache`` in the request body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["default", "no-cache", "no-store"] = "default"
    ttl: int | None = Field(None, gt=0, description="seconds the answer stays cached")


class RunPodSettings(BackendSettings):
    endpoint_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$", description="the serverless endpoint's id"
    )
    endpoint_url: str | None = Field(
        None,
        description="overrides https://api.runpod.ai/v2/{endpoint_id} (queue) or "
        "https://{endpoint_id}.api.runpod.ai (load balancer), e.g. a local test server "
        "(base_url is accepted as the same)",
    )
    endpoint_type: Literal["queue", "load_balancer"] = Field(
        "queue", description="RunPod's endpoint type: queue (QUEUE) or load_balancer"
    )
    model: str | None = Field(DEFAULT_MODEL, description="the model the worker serves")
    cold_start_timeout_s: float = Field(
        600.0, gt=0, description="how long a request may wait for a worker to start"
    )
    poll_initial_s: float = Field(0.25, gt=0, description="first /status poll interval")
    poll_max_s: float = Field(3.0, gt=0, description="longest /status poll interval")
    stream_poll_s: float = Field(
        0.1, gt=0, description="/stream poll interval while a streamed job runs"
    )
    runsync_wait_ms: int = Field(
        30_000, ge=1_000, le=300_000, description="RunPod's ?wait= for /runsync"
    )
    stream_mode: Literal["openai", "poll", "runsync"] = Field(
        "openai",
        description="queue endpoints: openai (SSE through the endpoint's OpenAI route), poll "
        "(/run and /stream) or runsync (no streaming: for the runpod SDK's local server)",
    )
    poll_method: Literal["GET", "POST"] = "GET"
    cancel_timeout_s: float = Field(5.0, gt=0)
    rest_url: str = Field(
        "https://api.runpod.io/v2",
        description="RunPod's REST API, where a load-balanced endpoint's worker counts are read",
    )
    cache: RunPodCacheControl | None = None
    cold_start: ColdStartSettings = Field(
        default_factory=ColdStartSettings,
        description="keep-warm, hedging and worker affinity (ccrelay.coldstart)",
    )

    @field_validator("endpoint_url", "rest_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _where(self) -> RunPodSettings:
        if self.endpoint_url and self.base_url and self.endpoint_url != self.base_url:
            raise ValueError("set endpoint_url or base_url for a runpod backend, not both")
        if not (self.endpoint_url or self.base_url or self.endpoint_id):
            raise ValueError(
                "a runpod backend needs endpoint_id (its URL is then "
                "https://api.runpod.ai/v2/{endpoint_id}) or endpoint_url"
            )
        if self.poll_max_s < self.poll_initial_s:
            raise ValueError("poll_max_s must be at least poll_initial_s")
        host = urlsplit(self.url).hostname or ""
        if host.endswith(LOAD_BALANCER_HOST) and self.api_key is None:
            raise ValueError(
                f"{host} needs an api_key: set api_key to ${{RUNPOD_API_KEY}} (a RunPod API key)"
            )
        return self

    def names_backends(self) -> dict[str, str]:
        fallback = self.cold_start.hedge.fallback
        return {"cold_start.hedge.fallback": fallback} if fallback else {}

    @property
    def url(self) -> str:
        """The endpoint's base URL, without a trailing slash."""
        given = self.endpoint_url or self.base_url
        if given:
            return given.rstrip("/")
        if self.endpoint_type == "load_balancer":
            return f"https://{self.endpoint_id}.{LOAD_BALANCER_HOST}"
        return f"{RUNPOD_API}/{self.endpoint_id}"
