"""The three cold-start policies of one RunPod backend behind the few calls a gateway makes.

Pure and clock-injected: no I/O, no asyncio, no clock read; every call takes ``now`` (seconds on
one monotonic clock) and returns what to do. The gateway performs it and reports back. The
benchmark (``python -m bench sessions``) drives these same objects in simulated time.

Gateway calls, per RunPod backend (``session`` = the request's ``X-Claude-Code-Session-Id``):

1. A request arrives: ``plan = plan_request(session, now, prompt_tokens=<estimate>)``.
   - ``plan.backend == "fallback"``: answer it from the hedging fallback (`HedgeSettings.fallback`).
   - ``"self"``: send it to the endpoint with ``X-Runpod-Worker-Id: plan.worker_header`` when
     that is not None (load-balancing endpoints). If ``plan.hedge_after_s`` is set and no byte has
     come back by then, call ``late_hedge(session, now, job_running=...)`` (``job_running``: the job
     is IN_PROGRESS, or the gateway cannot tell); a plan back means: withdraw the queued job and
     answer from the fallback.
   - send every job of ``plan.jobs`` in the background (see 3).
2. The request ends: ``on_answer(session, now, backend=..., worker_id=<reply's
   X-Runpod-Worker-Id>, fallback_usd=<the fallback answer's price>, ok=...)``. On a 404
   ``affinity_worker_gone``: ``on_worker_gone(session)`` and resend without the header.
3. A timer: ``tick = tick(now)``; send ``tick.jobs``; if ``tick.check_workers``, read the worker
   counts (``GET /v2/{id}/health`` or REST v2 ``/workers``) and pass them to
   ``observe_workers(WorkerCounts.from_health(body), now)``; call ``tick`` again at
   ``tick.next_at`` or at the next request or answer, whichever is first.
4. Each background job (`WarmJob`): ``warm_up`` is a job that runs no inference (the
   ``ccrelay_warmup`` job input on a queue endpoint); ``ping`` is the same, sent with the
   session's worker header; ``prefill`` is the session's latest request with ``max_tokens: 1``
   and the session's worker header, its answer discarded (the gateway keeps the latest request of
   each session the fallback serves). When it ends: ``on_job_done(job, now, ok=...,
   worker_id=...)``; every job has the backend's deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ccrelay.coldstart.affinity import WorkerAffinity
from ccrelay.coldstart.endpoint_view import EndpointView, WorkerCounts
from ccrelay.coldstart.hedge import ColdStartHedge
from ccrelay.coldstart.keep_warm import SessionKeepWarm
from ccrelay.coldstart.settings import ColdStartSettings

__all__ = ["ColdStartPolicies", "RequestPlan", "TickPlan", "WarmJob"]

ANONYMOUS = "-"
"""The session of a request without ``X-Claude-Code-Session-Id``."""


@dataclass(frozen=True)
class WarmJob:
    """A background job the gateway sends for a policy; its answer is not a user's."""

    kind: Literal["warm_up", "ping", "prefill"]
    session_id: str | None = None
    worker_header: str | None = None
    sent_at: float = 0.0


@dataclass(frozen=True)
class RequestPlan:
    backend: Literal["self", "fallback"]
    worker_header: str | None = None
    hedge_after_s: float | None = None
    jobs: tuple[WarmJob, ...] = ()


@dataclass(frozen=True)
class TickPlan:
    jobs: tuple[WarmJob, ...] = ()
    check_workers: bool = False
    next_at: float | None = None


class ColdStartPolicies:
    """Keep-warm, hedging and affinity sharing one view of the endpoint.

    `gpu_usd_per_s` prices a warm worker (the backend's ``gpu_usd_per_second``, or
    `KeepWarmSettings.gpu_usd_per_s`); `has_fallback` is False when no backend can hedge, which
    turns hedging off whatever the settings say.
    """

    def __init__(
        self, settings: ColdStartSettings, *, gpu_usd_per_s: float, has_fallback: bool
    ) -> None:
        self.settings = settings
        self.view = EndpointView(settings.idle_timeout_s, settings.margin_s)
        price = settings.keep_warm.gpu_usd_per_s or gpu_usd_per_s
        self.keep_warm = SessionKeepWarm(settings.keep_warm, self.view, price)
        self.hedge = ColdStartHedge(settings.hedge, self.view, enabled=has_fallback)
        self.affinity = WorkerAffinity(settings.affinity, settings.idle_timeout_s)

    def plan_request(
        self, session_id: str | None, now: float, *, prompt_tokens: int | None = None
    ) -> RequestPlan:
        """`prompt_tokens`: the request's estimated size (``ccrelay_translate.tokens``)."""
        session = session_id or ANONYMOUS
        to_self = self.hedge.serves_self(session, now, prompt_tokens)
        self.keep_warm.on_request(session, now, self_hosted=to_self)
        if not to_self:
            return RequestPlan("fallback", jobs=self._warm_up(now))
        hedge_after = self.settings.hedge.hedge_after_s if self.hedge.enabled else None
        return RequestPlan("self", self.affinity.header(session, now), hedge_after)

    def needs_counts(self, now: float) -> bool:
        """Nothing fresh says whether a worker is up, and hedging depends on it: read the
        worker counts before planning (`observe_workers`)."""
        if not self.hedge.enabled or self.view.known_warm(now):
            return False
        return self.view.counts_say_ready(now, self.settings.hedge.observe_every_s) is None

    def late_hedge(
        self, session_id: str | None, now: float, *, job_running: bool
    ) -> RequestPlan | None:
        session = session_id or ANONYMOUS
        if not self.hedge.late_hedge(session, job_running=job_running):
            return None
        self.keep_warm.on_moved_to_fallback(session)
        return RequestPlan("fallback", jobs=self._warm_up(now))

    def on_answer(
        self,
        session_id: str | None,
        now: float,
        *,
        backend: Literal["self", "fallback"],
        worker_id: str | None = None,
        fallback_usd: float = 0.0,
        ok: bool = True,
    ) -> None:
        session = session_id or ANONYMOUS
        served = backend == "self" and ok
        self.keep_warm.on_answer(session, now, self_hosted=backend == "self")
        if served:
            self.view.on_worker_answer(now)
            self.affinity.record(session, worker_id, now)
            self.hedge.on_self_answer(session, now)
        elif backend == "fallback":
            self.hedge.on_fallback_answer(fallback_usd)
        self._price_cold_starts()

    def on_worker_gone(self, session_id: str | None) -> None:
        self.affinity.forget(session_id or ANONYMOUS)

    def observe_workers(self, counts: WorkerCounts | None, now: float) -> None:
        if counts is not None:
            self.view.observe(counts, now)

    def tick(self, now: float) -> TickPlan:
        jobs: list[WarmJob] = []
        session = self.keep_warm.due(now)
        if session is not None:
            self.keep_warm.on_ping_sent(now)
            jobs.append(WarmJob("ping", session, self.affinity.header(session, now), now))
        for session in self.hedge.prefills_due(now):
            self.hedge.on_prefill_sent(session, now)
            jobs.append(WarmJob("prefill", session, self.affinity.header(session, now), now))
        # a ping goes out at the edge of what the last answer vouches for: its answer says more
        check = not jobs and self._wants_counts(now)
        wakes = [self.keep_warm.next_at(now), self._next_check(now)]
        pending = [at for at in wakes if at is not None and at > now]
        return TickPlan(tuple(jobs), check, min(pending, default=None))

    def on_job_done(
        self, job: WarmJob, now: float, *, ok: bool, worker_id: str | None = None
    ) -> None:
        if ok:
            self.view.on_worker_answer(now)
            if job.session_id is not None:
                self.affinity.record(job.session_id, worker_id, now)
        if job.kind == "warm_up":
            self.hedge.on_warm_up_done()
            if ok:
                self.keep_warm.on_cold_start(now - job.sent_at)
        elif job.kind == "ping":
            self.keep_warm.on_ping_done()
        elif job.session_id is not None:
            self.hedge.on_prefill_done(job.session_id, now, ok=ok)
        self._price_cold_starts()

    def warm_up_started(self, now: float) -> WarmJob:
        """A warm-up the gateway sent on its own (at a session's start): counted as the one
        under way, so a hedged request does not start a second worker beside it."""
        self.hedge.on_warm_up_sent(now)
        return WarmJob("warm_up", sent_at=now)

    def _price_cold_starts(self) -> None:
        """Keep-warm weighs holding against what hedged cold starts cost (once one has)."""
        if self.hedge.enabled:
            self.keep_warm.set_cold_penalty(self.hedge.episode_usd)

    def _warm_up(self, now: float) -> tuple[WarmJob, ...]:
        if not self.hedge.warm_up_due(now):
            return ()
        self.hedge.on_warm_up_sent(now)
        return (WarmJob("warm_up", sent_at=now),)

    def _active(self, now: float) -> bool:
        until = self.keep_warm.hold_until()
        return until is not None and now < until

    def _wants_counts(self, now: float) -> bool:
        every = self.settings.hedge.observe_every_s
        return (
            self.hedge.enabled
            and self._active(now)
            and not self.view.known_warm(now)
            and self.view.counts_stale(now, every)
        )

    def _next_check(self, now: float) -> float | None:
        if not self.hedge.enabled or not self._active(now):
            return None
        at = (
            now
            if self.view.counts_at is None
            else self.view.counts_at + self.settings.hedge.observe_every_s
        )
        until = self.view.warm_until()
        if until is not None:
            at = max(at, until)
        return at
