"""How a RunPod backend hides its cold starts: keep-warm, hedging and worker affinity.

`ColdStartSettings` is the block a runpod backend's settings carry (``cold_start:``); each policy
has its own part (`ccrelay.coldstart.policies`). ``python -m bench sessions`` measures these
defaults on days of Claude Code sessions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AffinityMode",
    "AffinitySettings",
    "ColdStartSettings",
    "HedgeSettings",
    "KeepWarmSettings",
]

AffinityMode = Literal["off", "soft", "strict", "strict-resume"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeepWarmSettings(_Frozen):
    """Keep one worker warm while a session is active; how long is a price question.

    The worker is held through a session's quiet spell as long as holding it is expected to cost
    less than letting it go and paying for the next cold start (`ccrelay.coldstart.keep_warm`).
    """

    enabled: bool = True
    gpu_usd_per_s: float | None = Field(
        None,
        gt=0,
        description="what a warm worker costs per second; unset: the backend's "
        "gpu_usd_per_second in the price table",
    )
    cold_start_s: float = Field(
        75.0,
        gt=0,
        description="billed seconds of a cold start (container, engine, model load) until the "
        "gateway has timed its own warm-ups",
    )
    wait_usd_per_s: float = Field(
        0.02,
        ge=0,
        description="what a second of a developer waiting on a cold start is worth; prices a "
        "cold start when no fallback hedges it, and before the first hedged one was seen",
    )
    max_hold_s: float = Field(
        1800.0,
        gt=0,
        description="the longest quiet spell a worker is held for; a session quiet for longer "
        "counts as ended",
    )
    min_pauses: int = Field(
        20, ge=1, description="observed pauses before the hold is fitted to them"
    )
    pause_memory: int = Field(200, ge=1, description="how many recent pauses the fit uses")
    max_sessions: int = Field(256, ge=1, description="sessions tracked at once (oldest dropped)")


class HedgeSettings(_Frozen):
    """Serve from a hosted fallback while no worker is ready, and start one meanwhile."""

    enabled: bool = True
    fallback: str | None = Field(
        None,
        description="backend that answers while the worker starts; unset: the next backend of "
        "the failover chain",
    )
    hedge_after_s: float | None = Field(
        2.0,
        gt=0,
        description="a self-hosted request with no first byte after this long, whose job has "
        "not started running, moves to the fallback (unset: never). For a gateway that can tell "
        "a queued job from a running one: ccrelay's cannot yet, and runs with it unset",
    )
    probe_when_unsure: bool = Field(
        True,
        description="with nothing fresh saying whether a worker is ready, send the request to "
        "the endpoint and let the late hedge move it if it waits (needs hedge_after_s); "
        "ccrelay's gateway reads the worker counts first instead",
    )
    cache_cold_tokens: int | None = Field(
        6000,
        ge=1,
        description="a prompt this long (estimated) that no live worker has served its session "
        "counts as cold: evaluating it all would take seconds (unset: only a cold worker does)",
    )
    prefill: bool = Field(
        True,
        description="before a session returns to a fresh worker, send its latest prompt there "
        "with max_tokens 1 so the worker's cache holds it",
    )
    observe_every_s: float = Field(
        10.0,
        gt=0,
        description="while a session is active and no worker is known warm, read the endpoint's "
        "worker counts this often",
    )


class AffinitySettings(_Frozen):
    """Send a session back to the worker that served it (load-balancing endpoints only).

    Modes are RunPod's `X-Runpod-Worker-Id` request values (runpod/docs
    serverless/load-balancing/worker-affinity.mdx): ``soft`` prefers the worker and falls back to
    normal routing, ``strict`` waits for it (404 when it is gone), ``strict-resume`` also resumes
    it if it scaled down. ``off`` for queue endpoints, which have no affinity.
    """

    mode: AffinityMode = "soft"
    expire_after_s: float | None = Field(
        None,
        gt=0,
        description="forget a session's worker this long after its last answer; unset: the "
        "endpoint's idle timeout (the worker, and its cache, are gone after it)",
    )
    max_sessions: int = Field(
        1024, ge=1, description="sessions remembered at once (oldest dropped)"
    )


class ColdStartSettings(_Frozen):
    """The three policies of one RunPod backend, and what they share about its endpoint."""

    idle_timeout_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="the endpoint's workers.idleTimeout: a worker stops this long after its "
        "last job",
    )
    margin_s: float = Field(
        5.0,
        ge=0,
        description="how long before the idle timeout ends the gateway stops counting on a "
        "worker, and keep-warm pings it",
    )
    keep_warm: KeepWarmSettings = Field(default_factory=KeepWarmSettings)
    hedge: HedgeSettings = Field(default_factory=HedgeSettings)
    affinity: AffinitySettings = Field(default_factory=AffinitySettings)

    @model_validator(mode="after")
    def _margin(self) -> ColdStartSettings:
        if self.margin_s >= self.idle_timeout_s:
            raise ValueError("cold_start.margin_s must be shorter than idle_timeout_s")
        return self

    def as_gateway_runs(self, *, load_balanced: bool) -> ColdStartSettings:
        """These settings as the gateway runs them (`ccrelay.coldstart.driver`), which the
        benchmark replays too:

        - affinity off on a queue endpoint, which gives a job to whichever worker takes it;
        - no late hedge (``hedge_after_s`` unset, so no probing of an endpoint whose state is
          unknown either): through RunPod's OpenAI route or a load balancer the gateway cannot
          tell a request waiting for a worker from one being evaluated. It reads the worker
          counts before planning instead.
        """
        update: dict[str, object] = {}
        if not load_balanced and self.affinity.mode != "off":
            update["affinity"] = AffinitySettings(mode="off")
        if self.hedge.hedge_after_s is not None:
            update["hedge"] = self.hedge.model_copy(update={"hedge_after_s": None})
        return self.model_copy(update=update) if update else self
