"""A RunPod serverless endpoint in simulated time: workers, their slots and caches, billing.

What is modelled, each from the latency model unless said otherwise:

- Workers start on demand, up to ``max_workers``: a cold start is ``container_and_engine_s +
  model_load_s``, or ``flashboot_start_s`` with ``flashboot_hit_probability``. A worker stops
  ``idle_timeout_s`` after its last job ends, and is billed from its start until it stops,
  rounded up to the second (runpod/docs serverless/pricing.mdx), at the flex price; a minimum
  (always-on) worker never stops and is billed at the active price for the whole day.
- Scaling (the file gives no scaler figure): a worker starts when the requests waiting outnumber
  the free slots of the workers already starting (request-count scaling at ``parallel_slots``).
- A ready worker takes a job after ``queue_pick_up_s``. On a queue endpoint the job goes to any
  ready worker with a free slot (uniformly at random: whichever polls first); on a
  load-balancing endpoint a request naming a worker (``X-Runpod-Worker-Id``) goes to it if it
  has a free slot (soft), waits for it (strict), or goes anywhere if it is gone.
- Each worker has ``parallel_slots`` slots; a slot's KV cache holds the last prompt it served,
  and a request takes the free slot sharing the longest prefix with its prompt (least recently
  used on a tie), so only the rest is evaluated. A prompt shares its whole length with the
  session's previous prompt, the system prompt and tools (``first_prompt_tokens``) with one
  from before the session compacted, nothing with another session's.
- Prompt evaluation runs one prompt at a time per worker at ``prompt_eval_tokens_per_s`` (it is
  compute-bound); generation runs in every busy slot at once at ``generation_tokens_per_s``.
- Pings and warm-ups run no inference: a ready worker answers them after the pick-up time,
  without a slot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bench._sessions_assumptions import Assumptions
from bench._sessions_loop import Loop
from ccrelay.coldstart import WorkerCounts

__all__ = ["DAY_S", "Endpoint", "Job", "Worker"]

DAY_S = 86_400.0
JobKind = Literal["request", "prefill", "ping", "warm_up"]


@dataclass(eq=False)
class Job:
    kind: JobKind
    on_done: Callable[[Job], None]
    session_id: str | None = None
    epoch: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 1
    header: str | None = None
    on_first_token: Callable[[Job], None] | None = None
    submitted_at: float = 0.0
    started_at: float | None = None
    first_token_at: float | None = None
    worker: Worker | None = None
    cached_tokens: int = 0
    cold_wait: bool = False

    @property
    def light(self) -> bool:
        return self.kind in ("ping", "warm_up")


@dataclass(eq=False)
class _Slot:
    session_id: str | None = None
    epoch: int = 0
    tokens: int = 0
    busy: bool = False
    used_at: float = -math.inf


@dataclass(eq=False)
class Worker:
    worker_id: str
    launched_at: float
    ready_at: float
    slots: list[_Slot]
    always_on: bool = False
    running: int = 0
    eval_free_at: float = 0.0
    last_end: float = 0.0
    stopped_at: float | None = None
    jobs: list[Job] = field(default_factory=list)

    def ready(self, now: float) -> bool:
        return self.stopped_at is None and self.ready_at <= now

    def free_slot(self) -> bool:
        return any(not slot.busy for slot in self.slots)


class Endpoint:
    def __init__(
        self,
        loop: Loop,
        a: Assumptions,
        *,
        load_balanced: bool,
        min_workers: int,
        rng: random.Random,
    ) -> None:
        self.loop, self.a, self.load_balanced, self.rng = loop, a, load_balanced, rng
        self.workers: list[Worker] = []
        self.pending: list[Job] = []
        self.placed = 0
        """Requests and prefills placed on a worker; `placed_among_several` of them while more
        than one worker was ready (where a queue endpoint may place them badly)."""
        self.placed_among_several = 0
        self._ids = 0
        for _ in range(min_workers):
            worker = self._new_worker(-DAY_S, ready_at=0.0)
            worker.always_on = True

    # what the gateway sees

    def submit(self, job: Job) -> None:
        job.submitted_at = self.loop.now
        self.pending.append(job)
        self._dispatch()

    def counts(self) -> WorkerCounts:
        now = self.loop.now
        alive = self._alive()
        ready = sum(1 for w in alive if w.ready(now))
        return WorkerCounts(ready=ready, initializing=len(alive) - ready)

    # billing

    def flex_seconds(self) -> float:
        return sum(
            math.ceil(w.stopped_at - w.launched_at)
            for w in self.workers
            if not w.always_on and w.stopped_at is not None
        )

    def gpu_usd(self) -> float:
        always_on = sum(1 for w in self.workers if w.always_on)
        return (
            self.flex_seconds() * self.a.usd_per_s_flex
            + always_on * DAY_S * self.a.usd_per_s_active
        )

    # the model

    def _alive(self) -> list[Worker]:
        return [w for w in self.workers if w.stopped_at is None]

    def _new_worker(self, launched_at: float, ready_at: float) -> Worker:
        self._ids += 1
        slots = [_Slot() for _ in range(self.a.parallel_slots)]
        worker = Worker(f"w{self._ids}", launched_at, ready_at, slots, last_end=ready_at)
        self.workers.append(worker)
        return worker

    def _launch(self) -> None:
        now = self.loop.now
        hit = self.rng.random() < self.a.flashboot_hit_probability
        start = self.a.flashboot_start_s if hit else self.a.cold_start_s
        worker = self._new_worker(now, now + start)
        self.loop.at(worker.ready_at, lambda: self._on_ready(worker))

    def _on_ready(self, worker: Worker) -> None:
        worker.last_end = self.loop.now
        self._dispatch()
        self._idle_check_later(worker)

    def _pick(self, job: Job, now: float) -> Worker | Literal["wait"] | None:
        ready = [w for w in self._alive() if w.ready(now) and (job.light or w.free_slot())]
        pinned = self._pinned(job)
        if pinned is not None and pinned.stopped_at is None:
            if pinned in ready:
                return pinned
            if job.header is not None and job.header.startswith("strict"):
                return "wait"
        return self.rng.choice(ready) if ready else None

    def _pinned(self, job: Job) -> Worker | None:
        if not self.load_balanced or not job.header:
            return None
        worker_id = job.header.split()[-1]
        return next((w for w in self.workers if w.worker_id == worker_id), None)

    def _dispatch(self) -> None:
        now = self.loop.now
        unplaced_heavy = 0
        unplaced_light = 0
        for job in list(self.pending):
            worker = self._pick(job, now)
            if worker == "wait":
                continue
            if worker is None:
                unplaced_light += job.light
                unplaced_heavy += not job.light
                continue
            self.pending.remove(job)
            self._start(job, worker)
        alive = self._alive()
        starting = [w for w in alive if not w.ready(now)]
        coming = len(starting) * self.a.parallel_slots
        wanted = math.ceil(max(0, unplaced_heavy - coming) / self.a.parallel_slots)
        if unplaced_light and not alive:
            wanted = max(wanted, 1)
        for _ in range(min(wanted, self.a.max_workers - len(alive))):
            self._launch()

    def _start(self, job: Job, worker: Worker) -> None:
        now = self.loop.now
        job.started_at, job.worker = now, worker
        job.cold_wait = worker.ready_at > job.submitted_at
        worker.running += 1
        picked_up = now + self.a.queue_pick_up_s
        if job.light:
            self.loop.at(picked_up, lambda: self._end(job, worker, None))
            return
        self.placed += 1
        self.placed_among_several += sum(1 for w in self._alive() if w.ready(now)) > 1
        slot = max(
            (s for s in worker.slots if not s.busy),
            key=lambda s: (self._shared(s, job), -s.used_at),
        )
        job.cached_tokens = self._shared(slot, job)
        slot.busy = True
        slot.session_id, slot.epoch, slot.tokens = job.session_id, job.epoch, job.prompt_tokens
        evaluated = job.prompt_tokens - job.cached_tokens
        first = max(picked_up, worker.eval_free_at) + evaluated / self.a.prompt_eval_tokens_per_s
        worker.eval_free_at = first
        done = first + job.output_tokens / self.a.generation_tokens_per_s

        def first_token() -> None:
            job.first_token_at = self.loop.now
            if job.on_first_token is not None:
                job.on_first_token(job)

        self.loop.at(first, first_token)
        self.loop.at(done, lambda: self._end(job, worker, slot))

    def _shared(self, slot: _Slot, job: Job) -> int:
        if slot.session_id is None or slot.session_id != job.session_id:
            return 0
        if slot.epoch == job.epoch:
            return min(slot.tokens, job.prompt_tokens)
        return min(slot.tokens, job.prompt_tokens, self.a.first_prompt_tokens)

    def _end(self, job: Job, worker: Worker, slot: _Slot | None) -> None:
        now = self.loop.now
        worker.running -= 1
        worker.last_end = now
        if slot is not None:
            slot.busy, slot.used_at = False, now
        job.on_done(job)
        self._dispatch()
        self._idle_check_later(worker)

    def _idle_check_later(self, worker: Worker) -> None:
        if worker.always_on or worker.running:
            return
        stop_at = worker.last_end + self.a.idle_timeout_s

        def check() -> None:
            if (
                worker.stopped_at is None
                and not worker.running
                and worker.last_end + self.a.idle_timeout_s <= self.loop.now
            ):
                worker.stopped_at = self.loop.now
                self._dispatch()  # a strict request waiting for it goes elsewhere now

        self.loop.at(stop_at, check)
