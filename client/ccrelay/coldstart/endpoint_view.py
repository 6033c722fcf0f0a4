"""What one gateway knows about a RunPod endpoint's workers, from what it has seen.

Two kinds of evidence, both cheap: a worker that answered at ``t`` stays up at least until
``t + idle_timeout`` (RunPod stops a worker only after that long without a job: runpod/docs
serverless/endpoints/endpoint-configurations.mdx, "Idle timeout"), and the endpoint's own
worker counts, read from the job API's ``GET /v2/{id}/health`` or REST v2's
``GET /v2/serverless/{id}/workers`` (its ``summary``). Parsing them lives here so every caller
reads them the same way; the I/O does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EndpointView", "WorkerCounts"]


@dataclass(frozen=True)
class WorkerCounts:
    """Workers by state at one moment. ``ready`` = able to take a job now (idle or running)."""

    ready: int
    initializing: int = 0

    @classmethod
    def from_health(cls, body: Any) -> WorkerCounts | None:
        """The job API's ``/health`` reply, or None if it is not one.

        Its ``workers`` is an open map of counts: current docs show ``idle`` and ``running``,
        older ones also ``ready``, ``initializing``, ``throttled`` (runpod/docs
        serverless/endpoints/operation-reference.mdx; docs/sdks/javascript/endpoints.md of 2024).
        """
        workers = body.get("workers") if isinstance(body, Mapping) else None
        if not isinstance(workers, Mapping):
            return None
        counts = {k: v for k, v in workers.items() if _count(v)}
        if not counts.keys() & {"idle", "running", "ready"}:
            return None
        ready = counts.get("idle", 0) + counts.get("running", 0)
        return cls(
            ready=max(ready, counts.get("ready", 0)), initializing=counts.get("initializing", 0)
        )

    @classmethod
    def from_workers_list(cls, body: Any) -> WorkerCounts | None:
        """REST v2's workers list (``ListEndpointWorkersResponse``), or None if it is not one.

        Its ``summary`` has required ``running``, ``idle``, ``initializing``, ``throttled``,
        ``unhealthy`` and ``total`` (runpod/docs api-reference-v2/openapi.json, ``WorkerSummary``).
        """
        summary = body.get("summary") if isinstance(body, Mapping) else None
        if not isinstance(summary, Mapping):
            return None
        needed = ("running", "idle", "initializing")
        if not all(_count(summary.get(key)) for key in needed):
            return None
        return cls(ready=summary["running"] + summary["idle"], initializing=summary["initializing"])


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class EndpointView:
    """The gateway's belief that a worker is ready, and until when it can count on it."""

    def __init__(self, idle_timeout_s: float, margin_s: float) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.margin_s = margin_s
        self.last_answer_at: float | None = None
        """When a worker last finished something for this gateway (answer, ping, warm-up)."""
        self.warm_since: float | None = None
        """When the current run of answers, each within an idle timeout of the last, began: a
        worker's cache is at most that old."""
        self.counts: WorkerCounts | None = None
        self.counts_at: float | None = None

    def on_worker_answer(self, now: float) -> None:
        last = self.last_answer_at
        if last is None or now >= last + self.idle_timeout_s:
            self.warm_since = now  # the workers may have stopped in between
        if self.last_answer_at is None or now > self.last_answer_at:
            self.last_answer_at = now

    def observe(self, counts: WorkerCounts, now: float) -> None:
        self.counts, self.counts_at = counts, now

    def warm_until(self) -> float | None:
        """Until when a worker is surely up: its idle timeout after the last answer, less the
        margin; None if none ever answered."""
        if self.last_answer_at is None:
            return None
        return self.last_answer_at + self.idle_timeout_s - self.margin_s

    def known_warm(self, now: float) -> bool:
        until = self.warm_until()
        return until is not None and now < until

    def counts_say_ready(self, now: float, max_age_s: float) -> bool | None:
        """What fresh worker counts say (True: a worker is ready); None if none are fresh."""
        if self.counts is None or self.counts_at is None or now - self.counts_at > max_age_s:
            return None
        until = self.warm_until()
        if self.counts.ready and until is not None and self.counts_at < until <= now:
            return None  # the worker counted may be ours, whose idle timeout has run out since
        return self.counts.ready > 0

    def counts_stale(self, now: float, max_age_s: float) -> bool:
        return self.counts_at is None or (
            now - self.counts_at >= max_age_s or self.counts_say_ready(now, max_age_s) is None
        )
