"""Replay a team's day through one gateway per developer against one simulated endpoint.

Each developer runs their own gateway (``ccrelay code`` starts one), with its own
`ColdStartPolicies`, the objects the real gateway runs; the endpoint, its workers and the
fallback are shared. The gateway here does what the policies' docstring asks of a real one, in
simulated time: it sends each request where the plan says, sends the background jobs, reads the
worker counts when asked, reports answers back, and calls ``tick`` after every event and at
``next_at``.

Like the gateway, it has no late hedge (`ColdStartSettings.as_gateway_runs`): when nothing
fresh says whether a worker is up it reads the worker counts first (`COUNTS_READ_S`), then plans.

The fallback answers after ``fallback.ttft_s`` and then generates at the self-hosted
``generation_tokens_per_s`` (the file gives no fallback rate; it only moves the next request).
Anthropic's price for the same requests is taken at the times they were sent here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bench._sessions_assumptions import Assumptions
from bench._sessions_endpoint import Endpoint, Job
from bench._sessions_loop import Loop
from bench._sessions_trace import DeveloperDay
from ccrelay.coldstart import (
    AffinitySettings,
    ColdStartPolicies,
    ColdStartSettings,
    HedgeSettings,
    KeepWarmSettings,
    WarmJob,
)

__all__ = ["Outcome", "PolicySetup", "Served", "policy_setups", "replay"]

COMPACTED_EXTRA_TOKENS = 4000
"""A compacted session restarts at ``first_prompt_tokens`` plus this (the file's note)."""


@dataclass(frozen=True)
class PolicySetup:
    settings: ColdStartSettings | None
    load_balanced: bool = False
    min_workers: int = 0


COUNTS_READ_S = 0.15
"""A read of the endpoint's worker counts (RunPod's API, one round trip): what a request waits
when the gateway must read them before planning it (an assumption of this benchmark)."""


def _settings(keep_warm: bool, hedge: bool, affinity: bool, idle_s: float) -> ColdStartSettings:
    return ColdStartSettings(
        idle_timeout_s=idle_s,
        keep_warm=KeepWarmSettings(enabled=keep_warm),
        hedge=HedgeSettings(enabled=hedge),
        affinity=AffinitySettings(mode="soft" if affinity else "off"),
    ).as_gateway_runs(load_balanced=affinity)


def policy_setups(a: Assumptions) -> dict[str, PolicySetup]:
    """What each policy name runs: queue endpoints unless affinity needs a load balancer."""
    idle = a.idle_timeout_s
    return {
        "none": PolicySetup(None),
        "always_on": PolicySetup(None, min_workers=1),
        "keep_warm": PolicySetup(_settings(True, False, False, idle)),
        "hedge": PolicySetup(_settings(False, True, False, idle)),
        "affinity": PolicySetup(_settings(False, False, True, idle), load_balanced=True),
        "all": PolicySetup(_settings(True, True, True, idle), load_balanced=True),
    }


@dataclass
class Served:
    """One user request and what it waited."""

    session_id: str
    sent_at: float
    prompt_tokens: int
    output_tokens: int
    backend: Literal["self", "fallback"] = "self"
    ttft_s: float = 0.0
    cold_wait: bool = False
    cached_tokens: int = 0
    fallback_usd: float = 0.0
    anthropic_usd: float = 0.0


@dataclass
class Outcome:
    """What a replay served and billed; several days' outcomes merge into one."""

    requests: list[Served] = field(default_factory=list)
    days: int = 1
    gpu_usd: float = 0.0
    flex_seconds: float = 0.0
    prefill_tokens: int = 0
    span_s: float = 0.0
    placed: int = 0
    placed_among_several: int = 0
    decisions: list[tuple[str, str]] = field(default_factory=list)
    """(kind, session) of every decision, in order, as `ColdStartDriver.decisions` lists the
    real gateway's: ``self``, ``fallback``, ``warm_up``, ``ping``, ``prefill``, ``counts``."""

    @classmethod
    def merge(cls, outcomes: list[Outcome]) -> Outcome:
        merged = cls(days=sum(o.days for o in outcomes))
        for o in outcomes:
            merged.requests += o.requests
            merged.gpu_usd += o.gpu_usd
            merged.flex_seconds += o.flex_seconds
            merged.prefill_tokens += o.prefill_tokens
            merged.span_s = max(merged.span_s, o.span_s)
            merged.placed += o.placed
            merged.placed_among_several += o.placed_among_several
            merged.decisions += o.decisions
        return merged


class _Gateway:
    def __init__(
        self, loop: Loop, endpoint: Endpoint, a: Assumptions, setup: PolicySetup, out: Outcome
    ) -> None:
        self.loop, self.endpoint, self.a, self.out = loop, endpoint, a, out
        self.policies = (
            None
            if setup.settings is None
            else ColdStartPolicies(
                setup.settings, gpu_usd_per_s=a.usd_per_s_flex, has_fallback=True
            )
        )
        self.latest: dict[str, tuple[int, int]] = {}
        """Each session's latest prompt (epoch, tokens): what a prefill sends."""
        self._tick_generation = 0

    def send(self, served: Served, epoch: int, done: Callable[[], None]) -> None:
        self.latest[served.session_id] = (epoch, served.prompt_tokens)
        policies, now = self.policies, self.loop.now
        if policies is None:
            self._to_self(served, epoch, None, done)
            return
        if policies.needs_counts(now):  # as the gateway does, a round trip before planning
            self.loop.at(now + COUNTS_READ_S, lambda: self._plan(served, epoch, done, read=True))
            return
        self._plan(served, epoch, done)

    def _plan(
        self, served: Served, epoch: int, done: Callable[[], None], *, read: bool = False
    ) -> None:
        policies, now = self.policies, self.loop.now
        assert policies is not None
        if read:
            self.out.decisions.append(("counts", "-"))
            policies.observe_workers(self.endpoint.counts(), now)
        plan = policies.plan_request(served.session_id, now, prompt_tokens=served.prompt_tokens)
        self.out.decisions.append((plan.backend, served.session_id))
        self._send_jobs(plan.jobs)
        if plan.backend == "fallback":
            self._to_fallback(served, done)
        else:
            self._to_self(served, epoch, plan.worker_header, done)
        self.tick()

    def _to_self(
        self,
        served: Served,
        epoch: int,
        header: str | None,
        done: Callable[[], None],
    ) -> None:
        def first_token(job: Job) -> None:
            served.ttft_s = self.loop.now - served.sent_at

        def ended(job: Job) -> None:
            served.cold_wait, served.cached_tokens = job.cold_wait, job.cached_tokens
            if self.policies is not None:
                worker = job.worker.worker_id if job.worker else None
                self.policies.on_answer(
                    served.session_id, self.loop.now, backend="self", worker_id=worker
                )
                self.tick()
            done()

        job = Job(
            "request",
            ended,
            session_id=served.session_id,
            epoch=epoch,
            prompt_tokens=served.prompt_tokens,
            output_tokens=served.output_tokens,
            header=header,
            on_first_token=first_token,
        )
        self.endpoint.submit(job)

    def _to_fallback(self, served: Served, done: Callable[[], None]) -> None:
        a = self.a
        served.backend = "fallback"
        first = self.loop.now + a.fallback_ttft_s
        served.ttft_s = first - served.sent_at
        served.fallback_usd = (
            served.prompt_tokens * a.fallback_usd_per_mtok_in
            + served.output_tokens * a.fallback_usd_per_mtok_out
        ) / 1e6

        def ended() -> None:
            assert self.policies is not None
            self.policies.on_answer(
                served.session_id,
                self.loop.now,
                backend="fallback",
                fallback_usd=served.fallback_usd,
            )
            self.tick()
            done()

        self.loop.at(first + served.output_tokens / a.generation_tokens_per_s, ended)

    def _send_jobs(self, jobs: tuple[WarmJob, ...]) -> None:
        for warm in jobs:
            self._send_job(warm)

    def _send_job(self, warm: WarmJob) -> None:
        self.out.decisions.append((warm.kind, warm.session_id or "-"))

        def ended(job: Job) -> None:
            assert self.policies is not None
            worker = job.worker.worker_id if job.worker else None
            self.policies.on_job_done(warm, self.loop.now, ok=True, worker_id=worker)
            self.tick()

        if warm.kind == "prefill" and warm.session_id in self.latest:
            epoch, tokens = self.latest[warm.session_id]
            job = Job("prefill", ended, warm.session_id, epoch, tokens, 1, warm.worker_header)
            self.out.prefill_tokens += tokens
        else:
            job = Job(
                "ping" if warm.kind == "ping" else "warm_up", ended, header=warm.worker_header
            )
        self.endpoint.submit(job)

    def tick(self) -> None:
        if self.policies is None:
            return
        now = self.loop.now
        plan = self.policies.tick(now)
        self._send_jobs(plan.jobs)
        if plan.check_workers:
            self.out.decisions.append(("counts", "-"))
            self.policies.observe_workers(self.endpoint.counts(), now)
        self._tick_generation += 1
        generation = self._tick_generation
        if plan.next_at is not None:
            self.loop.at(plan.next_at, lambda: self._timer(generation))

    def _timer(self, generation: int) -> None:
        if generation == self._tick_generation:
            self.tick()


class _Developer:
    """Walks one developer's day: each request is sent when the previous one's answer and the
    gap after it allow."""

    def __init__(self, day: DeveloperDay, gateway: _Gateway, a: Assumptions, out: Outcome) -> None:
        self.day, self.gateway, self.a, self.out = day, gateway, a, out
        self.loop = gateway.loop

    def start(self) -> None:
        if self.day.sessions:
            self.loop.at(self.day.sessions[0].gap_s, lambda: self._session(0))

    def _session(self, index: int) -> None:
        session = self.day.sessions[index]
        talk = _Conversation()

        def request(turn: int, n: int) -> None:
            planned = session.turns[turn].requests[n]
            talk.grow(planned.added_tokens, self.a)
            served = Served(session.session_id, self.loop.now, talk.prompt, planned.output_tokens)
            served.anthropic_usd = talk.anthropic_usd(served, self.a)
            self.out.requests.append(served)
            self.gateway.send(served, talk.epoch, lambda: after(turn, n))

        def after(turn: int, n: int) -> None:
            now = self.loop.now
            requests = session.turns[turn].requests
            if n + 1 < len(requests):
                self.loop.at(now + requests[n].tool_gap_s, lambda: request(turn, n + 1))
            elif turn + 1 < len(session.turns):
                self.loop.at(now + session.turns[turn + 1].think_s, lambda: request(turn + 1, 0))
            elif index + 1 < len(self.day.sessions):
                gap = self.day.sessions[index + 1].gap_s
                self.loop.at(now + gap, lambda: self._session(index + 1))
            self.out.span_s = max(self.out.span_s, now)

        request(0, 0)


@dataclass
class _Conversation:
    """A session's prompt as it grows and compacts, and what Anthropic has cached of it."""

    prompt: int = 0
    epoch: int = 0
    """Compactions so far: prompts of different epochs share only the system prompt and tools."""
    cached_at: float | None = None
    cached_prompt: int = 0
    cached_epoch: int = 0

    def grow(self, added: int, a: Assumptions) -> None:
        if self.prompt == 0:
            self.prompt = a.first_prompt_tokens
        elif self.prompt + added > a.context_window_tokens:
            self.epoch += 1
            self.prompt = a.first_prompt_tokens + COMPACTED_EXTRA_TOKENS
        else:
            self.prompt += added

    def anthropic_usd(self, served: Served, a: Assumptions) -> float:
        """Anthropic's price with prompt caching: the previous prompt (after a compaction, the
        system prompt and tools) is read from the cache within its TTL, the rest written."""
        read = 0
        if self.cached_at is not None and served.sent_at - self.cached_at <= a.cache_ttl_s:
            same = self.cached_epoch == self.epoch
            read = self.cached_prompt if same else min(a.first_prompt_tokens, served.prompt_tokens)
        write = served.prompt_tokens - read
        self.cached_at, self.cached_prompt, self.cached_epoch = (
            served.sent_at,
            served.prompt_tokens,
            self.epoch,
        )
        tokens_in = read * a.cache_read_multiplier + write * a.cache_write_multiplier
        return (
            tokens_in * a.anthropic_usd_per_mtok_in
            + served.output_tokens * a.anthropic_usd_per_mtok_out
        ) / 1e6


def replay(
    days: tuple[DeveloperDay, ...], a: Assumptions, setup: PolicySetup, seed: int
) -> Outcome:
    """One day of a team (each developer's `DeveloperDay` of the same day), on a fresh endpoint."""
    loop = Loop()
    day = days[0].day if days else 0
    endpoint = Endpoint(
        loop,
        a,
        load_balanced=setup.load_balanced,
        min_workers=setup.min_workers,
        rng=random.Random(f"{seed}/{day}/endpoint"),
    )
    out = Outcome()
    for day in days:
        _Developer(day, _Gateway(loop, endpoint, a, setup, out), a, out).start()
    loop.run()
    out.gpu_usd = endpoint.gpu_usd()
    out.flex_seconds = endpoint.flex_seconds()
    out.placed, out.placed_among_several = endpoint.placed, endpoint.placed_among_several
    return out
