"""The gateway's side of the cold-start policies: the I/O they ask for, on the real clock.

`ColdStartPolicies` decide and never act; `ColdStartDriver` acts for one scale-to-zero backend,
as the policies' docstring asks of a gateway (``python -m bench sessions`` does the same in
simulated time, with the same policy objects):

- before each request, `plan`: the request goes to the endpoint, or to the hedging fallback
  while no worker is ready; the plan's background jobs start. When nothing fresh says whether a
  worker is up (no answer within the idle timeout, worker counts older than
  ``hedge.observe_every_s``), the counts are read first, within `COUNTS_DEADLINE_S`: a read
  costs a round trip to RunPod, a wrong guess a cold start's wait or a needless fallback;
- after each answer, `answered` (whichever backend gave it);
- a timer calls ``tick`` when the policies want it: keep-warm pings just inside the idle
  timeout while a session is active, prefills of a session's latest prompt on a fresh worker,
  and reads of the endpoint's worker counts;
- each background job runs on the backend (`ColdStartEndpoint`) under its own deadlines, and
  its end is reported (``on_job_done``). A job never blocks a request and never raises into
  one.

Only the latest request of each session the fallback served is kept (for its prefill), and
only a few sessions' worth: a prompt is large.

There is no late hedge (`ColdStartPolicies.late_hedge`): through the endpoint's OpenAI route or
a load balancer, the gateway cannot tell a request waiting for a worker from one being
evaluated, so a request sent to the endpoint stays there (`ColdStartSettings.as_gateway_runs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, Protocol

from ccrelay.coldstart.endpoint_view import WorkerCounts
from ccrelay.coldstart.policies import ColdStartPolicies, RequestPlan, WarmJob
from ccrelay.errors import CcrelayError

__all__ = ["ColdStartDriver", "ColdStartEndpoint"]

log = logging.getLogger("ccrelay.coldstart")

_KEPT_PROMPTS = 8
COUNTS_DEADLINE_S = 2.0
"""The longest a request waits for the endpoint's worker counts before it is planned."""
"""Sessions whose latest prompt is kept for a prefill (each may be megabytes)."""


class ColdStartEndpoint(Protocol):
    """What the driver asks of a scale-to-zero backend (the ``runpod`` backend is one)."""

    name: str

    async def warm_up(self) -> float | None: ...

    async def ping(self, session_id: str | None) -> None:
        """A request that runs no inference and keeps the session's worker busy."""

    async def prefill(self, request: dict[str, Any], session_id: str | None) -> None:
        """The session's prompt with ``max_tokens`` 1, so the worker's cache holds it."""

    async def worker_counts(self) -> WorkerCounts | None: ...


class ColdStartDriver:
    def __init__(
        self,
        endpoint: ColdStartEndpoint,
        policies: ColdStartPolicies,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.policies = policies
        self.clock = clock
        self.decisions: list[tuple[str, str]] = []
        """(kind, session) of every decision made, for tests and logs: ``self``,
        ``fallback``, ``warm_up``, ``ping``, ``prefill``, ``counts``."""
        self._latest: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._jobs: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._warming = 0
        self._counting: asyncio.Task[None] | None = None

    def state(self) -> Literal["warm", "warming", "cold"]:
        """What a user would want to know before the next prompt: a worker is up (as far as
        the gateway knows), one is starting (a warm-up in flight), or none is."""
        if self.policies.view.known_warm(self.clock()):
            return "warm"
        return "warming" if self._warming else "cold"

    # -- requests ---------------------------------------------------------------------------

    async def plan(
        self, session_id: str | None, request: dict[str, Any], prompt_tokens: int | None
    ) -> RequestPlan:
        if self.policies.needs_counts(self.clock()):
            await self._fresh_counts()
        plan = self.policies.plan_request(session_id, self.clock(), prompt_tokens=prompt_tokens)
        self.decisions.append((plan.backend, session_id or "-"))
        if plan.backend == "fallback" and session_id is not None:
            self._latest[session_id] = request
            self._latest.move_to_end(session_id)
            while len(self._latest) > _KEPT_PROMPTS:
                self._latest.popitem(last=False)
        self._start(plan.jobs)
        self._tick()
        return plan

    def answered(
        self,
        session_id: str | None,
        *,
        backend: Literal["self", "fallback"],
        ok: bool,
        fallback_usd: float = 0.0,
    ) -> None:
        """A request ended (its worker, when it had one, is recorded by the backend's pins)."""
        self.policies.on_answer(
            session_id, self.clock(), backend=backend, ok=ok, fallback_usd=fallback_usd
        )
        self._tick()

    def worker_gone(self, session_id: str | None) -> None:
        self.policies.on_worker_gone(session_id)

    async def warm_up_now(self) -> float | None:
        """A warm-up at a session's start (`ccrelay.coldstart.warmup`), seen by the policies as
        the warm-up job it is: the seconds it took, None when the backend has none."""
        job = self.policies.warm_up_started(self.clock())
        self.decisions.append(("warm_up", "-"))
        self._warming += 1
        ok = False
        try:
            elapsed = await self.endpoint.warm_up()
            ok = True
            return elapsed
        finally:
            self._warming -= 1
            self.policies.on_job_done(job, self.clock(), ok=ok)
            self._tick()

    # -- the timer and the background jobs ----------------------------------------------------

    def _tick(self) -> None:
        if self._closed:
            return
        now = self.clock()
        plan = self.policies.tick(now)
        self._start(plan.jobs)
        if plan.check_workers and (self._counting is None or self._counting.done()):
            self._counting = self._spawn(self._read_counts())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if plan.next_at is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(plan.next_at - now, 0.0), self._tick)

    def _start(self, jobs: tuple[WarmJob, ...]) -> None:
        for job in jobs:
            self.decisions.append((job.kind, job.session_id or "-"))
            self._warming += job.kind == "warm_up"  # warming from now, not from its first step
            self._spawn(self._run(job))

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    async def _run(self, job: WarmJob) -> None:
        ok = True
        try:
            if job.kind == "warm_up":
                await self.endpoint.warm_up()
            elif job.kind == "ping":
                await self.endpoint.ping(job.session_id)
            else:
                request = self._latest.pop(job.session_id or "", None)
                if request is not None:
                    await self.endpoint.prefill(request, job.session_id)
        except CcrelayError as exc:
            ok = False
            log.info("%s: %s failed: %s", self.endpoint.name, job.kind, exc.message)
        finally:
            self._warming -= job.kind == "warm_up"
        self.policies.on_job_done(job, self.clock(), ok=ok)
        self._tick()

    async def _fresh_counts(self) -> None:
        """Read the worker counts (one read shared by the requests that arrive meanwhile)."""
        if self._counting is None or self._counting.done():
            self._counting = self._spawn(self._read_counts())
        try:
            await asyncio.wait_for(asyncio.shield(self._counting), COUNTS_DEADLINE_S)
        except TimeoutError:
            log.info("%s: no worker counts within %.0f s", self.endpoint.name, COUNTS_DEADLINE_S)

    async def _read_counts(self) -> None:
        self.decisions.append(("counts", "-"))
        try:
            counts = await self.endpoint.worker_counts()
        except CcrelayError as exc:
            log.info("%s: cannot read its workers: %s", self.endpoint.name, exc.message)
            return
        self.policies.observe_workers(counts, self.clock())
        self._tick()

    async def aclose(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._jobs):
            task.cancel()
        for task in list(self._jobs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
